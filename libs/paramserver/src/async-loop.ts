import * as tf from '@tensorflow/tfjs';
import {
  abortRequested,
  afterUpdate,
  publishWeights,
  reportProgress,
  stoppedEarly,
  type AggregatorContext,
} from './aggregator-context';
import { recordDrop, recordShare } from './progress';

/**
 * async mode: every gradient is applied as it arrives and new weights are published at once. A
 * gradient computed on weights more than `staleness` versions old is dropped and counted. Each
 * shard walks its own share of the schedule (its cursor survives restarts, kept in Redis) and says
 * "done" at the end; the run ends when every shard is done or gone.
 */
export async function runAsync(ctx: AggregatorContext): Promise<'done' | 'aborted'> {
  const { state, run, spec, layout, channel } = ctx;
  const scratch = new Float32Array(layout.totalFloats);
  const finished = (): number => new Set([...state.done, ...state.gone]).size;
  const consumed = (): number => state.shardSteps.reduce((a, b) => a + b, 0) / spec.workers;
  // Shards that finished while an earlier attempt ran (their "done" went to it): their cursors say so.
  const doneByCursor = async (): Promise<void> => {
    const cursors = await channel.readCursors();
    cursors.forEach((c, i) => {
      if (c >= run.plan.totalSteps && !state.done.includes(i)) state.done.push(i);
    });
  };
  await doneByCursor();
  await publishWeights(ctx);
  // Training time starts with the first gradient (shards first load data and build the model).
  let idleSince: number | undefined;
  // Early stopping: the shards still walking their share see the final "done" and stop; their
  // gradients left in the inbox go with the run's keys.
  while (finished() < spec.workers && !stoppedEarly(ctx)) {
    if (await abortRequested(ctx)) return 'aborted';
    const msg = await ctx.retry.run('waiting for gradients', () => channel.nextMessage(1000));
    // Idle for a second: a cheap look at the cursors too (one HMGET), never in the per-gradient path.
    if (!msg) {
      await doneByCursor();
      await reportProgress(ctx);
      continue;
    }
    if (msg.kind === 'done' || msg.kind === 'gone') {
      const list = msg.kind === 'done' ? state.done : state.gone;
      if (!list.includes(msg.shard)) list.push(msg.shard);
      continue;
    }
    if (msg.kind !== 'grad') {
      await channel.discardPayload(msg);
      continue;
    }
    const before = consumed();
    const stepBefore = state.step;
    // Cursor, not count: a restarted shard may resend its last step, which must not count twice.
    state.shardSteps[msg.shard] = Math.max(state.shardSteps[msg.shard] ?? 0, msg.step + 1);
    if (state.version - msg.version > spec.staleness) {
      recordDrop(state, msg.shard);
      await channel.discardPayload(msg);
      await reportProgress(ctx);
      continue;
    }
    const payload = msg.samples > 0 ? await channel.readPayload(msg, scratch) : null;
    if (payload) {
      const grads = layout.gradientMap(payload);
      try {
        ctx.optimizer.applyGradients(grads);
      } finally {
        tf.dispose(grads);
      }
      layout.writeFrozen(payload);
      // fit.prune, on the schedule of the shards' mean progress (the run's global steps).
      ctx.sparsity?.afterStep(consumed(), run.plan.totalSteps);
      state.step += 1;
      state.version += 1;
      state.samples += msg.samples;
      recordShare(state, msg.shard, msg.samples, msg.ms);
      await publishWeights(ctx);
    }
    // Wall time since the last message, waiting included (in async mode waiting is part of
    // throughput); validation and checkpoint time below is left out, as in sync mode.
    idleSince ??= performance.now() - msg.ms;
    state.trainMs += performance.now() - idleSince;
    await afterUpdate(
      ctx,
      {
        samples: payload ? msg.samples : 0,
        lossSum: payload ? msg.loss * msg.samples : 0,
        correct: payload ? msg.correct : 0,
        absErr: payload ? msg.absErr : 0,
        sqErr: payload ? msg.sqErr : 0,
      },
      before,
      consumed(),
      stepBefore,
    );
    idleSince = performance.now();
  }
  return 'done';
}
