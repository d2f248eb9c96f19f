import * as tf from '@tensorflow/tfjs';
import {
  abortRequested,
  afterUpdate,
  publishWeights,
  stoppedEarly,
  type AggregatorContext,
  type StepOutcome,
} from './aggregator-context';
import type { ShardMessage } from './messages';
import { recordDrop, recordShare } from './progress';

/** After this long without a quorum a step gives up and the aggregator job fails (and is retried). */
const minGiveUpMs = 60_000;

/**
 * sync and local modes: a barrier per step (sync) or per round of `syncEvery` local steps (local).
 * Publish weights version v for global step s; collect one payload per shard tagged v; close when
 * every live shard has answered (but those no worker has taken, and those lagging), or after the
 * step timeout with at least `quorum` answers. A shard that missed a step's deadline is lagging
 * (its process died or froze): later steps do not wait for it until it posts again (BullMQ hands
 * its job to another worker within LOCK_DURATION_MS + STALLED_INTERVAL_MS, and the new attempt
 * posts on the current weights), so a lost shard costs one step timeout, not one per step.
 * sync averages gradients (weighted by rows) and applies them with the aggregator's optimizer;
 * local averages the shards' weights. Late payloads (an older v) are dropped and counted.
 */
export async function runBarrier(ctx: AggregatorContext): Promise<'done' | 'aborted'> {
  const { state, run, spec, layout } = ctx;
  const local = spec.mode === 'local';
  const acc = new Float32Array(layout.totalFloats);
  let first = true;
  // Early stopping ends the run at an epoch's end: no next version is published, so the shards
  // wait for it and then see the aggregator's final "done", as at the last step.
  while (state.step < run.plan.totalSteps && !stoppedEarly(ctx)) {
    let t0 = performance.now();
    const stepBefore = state.step;
    const steps = local ? Math.min(spec.syncEvery, run.plan.totalSteps - state.step) : 1;
    await publishWeights(ctx);
    const got = await gather(ctx, local ? 'weights' : 'grad', spec.stepTimeoutMs * steps, acc);
    if (got === 'aborted') return 'aborted';
    // The first step of an attempt waits for the shards to start (load data, build the model):
    // training time starts when the first of them answers, as trainModel's starts at its first batch.
    if (first && got.firstAt !== undefined) t0 = got.firstAt;
    first = false;
    if (got.samples > 0) {
      // The rows-weighted sum becomes the mean: in place for weights, while copying for gradients.
      const inv = 1 / got.samples;
      for (let i = local ? 0 : layout.trainableFloats; i < acc.length; i++) acc[i]! *= inv;
      if (local) {
        layout.writeWeights(acc);
      } else {
        const grads = layout.gradientMap(acc, inv);
        try {
          ctx.optimizer.applyGradients(grads);
        } finally {
          tf.dispose(grads);
        }
        layout.writeFrozen(acc);
      }
      // fit.prune: the masks again, before these weights are published.
      ctx.sparsity?.afterStep(state.step + steps, run.plan.totalSteps);
    }
    state.step += steps;
    state.version += 1;
    state.samples += got.samples;
    state.trainMs += performance.now() - t0;
    await afterUpdate(ctx, got, stepBefore, state.step, stepBefore);
  }
  return 'done';
}

/** Collects this step's payloads into `acc` as a rows-weighted sum. */
async function gather(
  ctx: AggregatorContext,
  kind: ShardMessage['kind'],
  timeoutMs: number,
  acc: Float32Array,
): Promise<(StepOutcome & { firstAt?: number }) | 'aborted'> {
  const { state, spec, channel } = ctx;
  acc.fill(0);
  const arrived = new Set<number>();
  const out: StepOutcome & { firstAt?: number } = { samples: 0, lossSum: 0, correct: 0, absErr: 0, sqErr: 0 };
  const start = Date.now();
  const deadline = start + timeoutMs;
  const giveUp = start + Math.max(minGiveUpMs, 10 * timeoutMs);
  for (;;) {
    const live = spec.workers - state.gone.length;
    if (live <= 0) throw new Error('every shard of the run has failed');
    if (arrived.size >= live) return out;
    const quorum = Math.min(spec.quorum, live);
    // A shard whose job no worker has taken cannot answer: waiting out the timeout for it would
    // only slow every step (the coordinator logs the missing slots).
    if (arrived.size >= quorum && everyStaffedArrived(ctx, arrived)) return out;
    const now = Date.now();
    if (now >= deadline && arrived.size >= quorum) {
      const missing = awaited(ctx, arrived);
      for (const i of missing) ctx.lagging.add(i);
      state.timedOutSteps = (state.timedOutSteps ?? 0) + 1;
      const many = missing.length > 1;
      ctx.log(
        `step ${state.step}: closed after ${now - start} ms with ${arrived.size} of ${live} shards; steps go on ` +
          `without shard${many ? 's' : ''} ${missing.join(', ')} until ${many ? 'they post' : 'it posts'} again`,
      );
      return out;
    }
    if (now >= giveUp)
      throw new Error(
        `step ${state.step}: ${arrived.size} of ${live} shards after ${now - start} ms, quorum ${quorum} not reached`,
      );
    if (await abortRequested(ctx)) return 'aborted';
    const wait = Math.min(1000, (arrived.size >= quorum ? deadline : giveUp) - now);
    const msgs = await ctx.retry.run('waiting for the shards', () => channel.nextMessages(wait, live - arrived.size));
    for (const msg of msgs) {
      if (msg.kind === 'gone') {
        if (!state.gone.includes(msg.shard)) state.gone.push(msg.shard);
        continue;
      }
      // Posting again (even on older weights: a retried job's first step) ends a shard's lag.
      if (ctx.lagging.delete(msg.shard)) ctx.log(`step ${state.step}: shard ${msg.shard} is back`);
      if (msg.kind !== kind || msg.version !== state.version || arrived.has(msg.shard)) {
        // Computed on older weights (a step that closed without it, or before an aggregator restart).
        if (msg.version < state.version) recordDrop(state, msg.shard);
        await channel.discardPayload(msg);
        continue;
      }
      if (msg.samples > 0 && !(await channel.accumulatePayload(msg, acc, msg.samples))) continue; // expired: as if never sent
      arrived.add(msg.shard);
      out.firstAt ??= performance.now() - msg.ms; // when that shard started its step
      out.samples += msg.samples;
      out.lossSum += msg.loss * msg.samples;
      out.correct += msg.correct;
      out.absErr += msg.absErr;
      out.sqErr += msg.sqErr;
      recordShare(state, msg.shard, msg.samples, msg.ms);
    }
  }
}

function everyStaffedArrived(ctx: AggregatorContext, arrived: ReadonlySet<number>): boolean {
  return awaited(ctx, arrived).length === 0;
}

/** Shards a step still waits for: not arrived, not gone, taken by a worker, not lagging. */
function awaited(ctx: AggregatorContext, arrived: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < ctx.spec.workers; i++) {
    if (!arrived.has(i) && !ctx.state.gone.includes(i) && !ctx.unstaffed.has(i) && !ctx.lagging.has(i)) out.push(i);
  }
  return out;
}
