import * as tf from '@tensorflow/tfjs';
import {
  FieldError,
  type FitSpec,
  type DistributedProgress,
  type JobHooks,
  type TrainShardJobData,
  type TrainShardResult,
} from '@tq/contracts';
import {
  applyGradients,
  computeGradients,
  HeldMasks,
  createOptimizer,
  gatherBatch,
  initBackend,
  labelDtype,
  modelInputShape,
  nonZeroMasks,
} from '@tq/ml';
import { openRunChannel, SupersededError, type Claim, type RunChannel } from './channel';
import { EpochOrderCache, shardSlice } from './data-order';
import { RedisRetry } from './redis-retry';
import type { ShardDeps } from './deps';
import type { PublishedState } from './messages';
import { loadRunData, requireDistributed, runStartingModel, splitRunData, type RunData } from './run-setup';
import { WeightLayout } from './weight-layout';

interface ShardContext {
  hooks: JobHooks<DistributedProgress>;
  /** This attempt's hold on the shard's role: a newer attempt of the job ends this one. */
  claim: Claim;
  lastClaimCheckAt: number;
  /** Retries the waits for weights through a Redis outage (backoff), instead of failing the job. */
  retry: RedisRetry;
  shard: number;
  channel: RunChannel;
  model: tf.LayersModel;
  layout: WeightLayout;
  run: RunData;
  orders: EpochOrderCache;
  inputShape: number[];
  deps: ShardDeps;
  weights: Float32Array;
  payload: Float32Array;
  steps: number;
  samples: number;
  lastProgressAt: number;
  /** fit.prune in local mode: the zeros of the weights last pulled, held through the local steps. */
  masks?: HeldMasks;
}

interface StepStats {
  samples: number;
  loss: number;
  correct: number;
  /** Regression: the batch's sums of |error| and error². */
  absErr: number;
  sqErr: number;
}

/**
 * The TrainShard processor body: one worker's share of a run. It pulls the published weights,
 * trains on its slice of each global batch (data-order.ts) and pushes the result tagged with the
 * weights version: a gradient (sync, async) or its weights after `syncEvery` local steps (local).
 * It holds no state worth saving: a retried job re-joins from the current weights (async: from its
 * cursor in Redis). Returns when the aggregator announces the end (or an abort), at once when the
 * run is already over. `hooks.signal` (this job cancelled, its lock lost, its worker shutting down) ends it with
 * the signal's reason; the run's own stop comes from the aggregator.
 */
export async function runShard(
  data: TrainShardJobData,
  deps: ShardDeps,
  hooks: JobHooks<DistributedProgress>,
): Promise<TrainShardResult> {
  const { runId, shardIndex, request } = data;
  const spec = requireDistributed(request);
  if (shardIndex >= spec.workers)
    throw new FieldError('shardIndex', `${shardIndex} is not a shard of a run with ${spec.workers} workers`);
  const channel = openRunChannel(deps, runId, spec.workers);
  try {
    // First of all (the later an attempt claims, the likelier an older one claims after it): an
    // older attempt still running, its lock lapsed, stops at its next look, freeing its slot.
    hooks.signal.throwIfAborted();
    const claim = await channel.claim(`shard:${shardIndex}`);
    // A job that got a slot only after its run ended (a retry, a queue short of slots) has nothing
    // to do: say so before loading data and building a model for nothing.
    if (await channel.isEnded()) {
      await channel.release(claim);
      return { steps: 0, samples: 0 };
    }
    await initBackend();
    const dataset = await loadRunData(request, deps);
    const { model } = await runStartingModel(request, deps, runId, dataset);
    try {
      const run = splitRunData(request, dataset, model);
      const layout = WeightLayout.of(model);
      const ctx: ShardContext = {
        hooks,
        claim,
        lastClaimCheckAt: Date.now(),
        retry: new RedisRetry(hooks.log, deps.redisRetryMaxMs),
        shard: shardIndex,
        channel,
        model,
        layout,
        run,
        deps,
        orders: new EpochOrderCache(run.plan),
        inputShape: modelInputShape(model),
        weights: new Float32Array(layout.totalFloats),
        payload: new Float32Array(layout.totalFloats),
        steps: 0,
        samples: 0,
        lastProgressAt: 0,
      };
      const first = await join(ctx, deps.joinTimeoutMs ?? 600_000);
      if (first) {
        if (spec.mode === 'async') await asyncLoop(ctx, spec.staleness);
        else await barrierLoop(ctx, spec.mode === 'local' ? spec.syncEvery : 0, request.fit, first);
      }
      return { steps: ctx.steps, samples: ctx.samples };
    } finally {
      model.dispose();
    }
  } finally {
    await channel.close();
  }
}

/** Waits for the run's first published weights; null when the run is already over. */
async function join(ctx: ShardContext, timeoutMs: number): Promise<PublishedState | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await checkGoOn(ctx);
    if (await ctx.channel.isEnded()) return null;
    const state = await waitForWeights(ctx, -1, 2000);
    if (state) return state.status === 'running' ? state : null;
    if (Date.now() > deadline)
      throw new Error(
        `run ${ctx.channel.opts.runId}: no weights published within ${timeoutMs} ms (is a worker serving the aggregate queue?)`,
      );
  }
}

/**
 * sync (localSteps = 0: push one gradient per published version) and local (train up to
 * `localSteps` steps with our own optimizer, then push our weights for averaging).
 */
async function barrierLoop(
  ctx: ShardContext,
  localSteps: number,
  fit: Parameters<typeof createOptimizer>[0] & Pick<FitSpec, 'prune'>,
  first: PublishedState,
): Promise<void> {
  const optimizer = localSteps > 0 ? createOptimizer(fit) : undefined;
  let seen = -1;
  // join() took the first wake note: waiting for another would stall until the once-a-second look.
  let pending: PublishedState | null = first;
  // sync: the next step's rows, gathered while the aggregator works (null: that step has none of ours).
  let ahead: Ahead | undefined;
  try {
    for (;;) {
      await checkGoOn(ctx);
      const state = pending ?? (await waitForWeights(ctx, seen, 2000));
      pending = null;
      if (!state) {
        if (await runGone(ctx)) return;
        continue;
      }
      if (state.status !== 'running') return;
      const t0 = performance.now();
      // Usually no round trip: the weights came with the wake note (RunChannel.waitForState).
      const weights = await ctx.channel.pullWeights(state, ctx.weights);
      if (!weights) continue; // superseded while we read: take the newer version
      ctx.layout.writeWeights(weights);
      // The aggregator holds fit.prune's masks; local steps keep the zeros they were given.
      if (optimizer && fit.prune) {
        ctx.masks?.dispose();
        ctx.masks = new HeldMasks(nonZeroMasks(ctx.model));
      }
      seen = state.version;
      if (!optimizer) {
        const ready = ahead;
        ahead = undefined;
        const s = stepOn(ctx, state.step, true, undefined, ready);
        await delay(ctx);
        const sent = ctx.channel.push(
          {
            kind: 'grad',
            shard: ctx.shard,
            version: state.version,
            step: state.step,
            ...s,
            ms: performance.now() - t0,
          },
          s.samples > 0 ? ctx.payload : undefined,
        );
        // The next step is most likely state.step + 1 (stepOn checks): gather it while the gradient travels.
        if (state.step + 1 < ctx.run.plan.totalSteps)
          ahead = { step: state.step + 1, batch: prepareBatch(ctx, state.step + 1) };
        await sent;
        tally(ctx, 1, s.samples);
      } else {
        const steps = Math.min(localSteps, ctx.run.plan.totalSteps - state.step);
        const total: StepStats = { samples: 0, loss: 0, correct: 0, absErr: 0, sqErr: 0 };
        for (let j = 0; j < steps; j++) {
          const s = stepOn(ctx, state.step + j, false, optimizer);
          total.samples += s.samples;
          total.loss += s.loss * s.samples;
          total.correct += s.correct;
          total.absErr += s.absErr;
          total.sqErr += s.sqErr;
          await new Promise<void>((resolve) => setImmediate(resolve)); // let BullMQ renew the lock
        }
        await delay(ctx);
        const out = ctx.layout.readWeights(ctx.payload);
        await ctx.channel.push(
          {
            kind: 'weights',
            shard: ctx.shard,
            version: state.version,
            step: state.step,
            samples: total.samples,
            loss: total.samples ? total.loss / total.samples : 0,
            correct: total.correct,
            absErr: total.absErr,
            sqErr: total.sqErr,
            ms: (performance.now() - t0) / Math.max(1, steps),
          },
          total.samples > 0 ? out : undefined,
        );
        tally(ctx, steps, total.samples);
      }
      await reportShardProgress(ctx, state.step);
    }
  } finally {
    optimizer?.dispose();
    ctx.masks?.dispose();
    if (ahead?.batch) tf.dispose([ahead.batch.x, ahead.batch.y]);
  }
}

/**
 * async: walk our cursor through the schedule on whatever weights are newest, push every gradient.
 * Back-pressure: a gradient waits behind the inbox's backlog, each applied one a version further,
 * and is dropped beyond `staleness`. So we send only while the backlog is short enough for it (and
 * for the other shards sending at the same moment) to arrive in time, and otherwise wait for the
 * aggregator to catch up. A stalled or dead aggregator thus never has an inbox filling up with
 * gradients it would throw away.
 */
async function asyncLoop(ctx: ShardContext, staleness: number): Promise<void> {
  const total = ctx.run.plan.totalSteps;
  const maxBacklog = Math.max(0, staleness - (ctx.run.plan.workers - 1));
  let cursor = await ctx.channel.readCursor(ctx.shard);
  let have = -1;
  while (cursor < total) {
    await checkGoOn(ctx);
    const state = await ctx.channel.readState();
    if (!state) {
      if (await runGone(ctx)) return;
      await ctx.channel.waitForState(ctx.shard, -1, 1000);
      continue;
    }
    if (state.status !== 'running') return;
    if ((await ctx.channel.inboxLength()) > maxBacklog) {
      // Drops and empty messages move no version, so this is a short wait, then a fresh look.
      await ctx.channel.waitForState(ctx.shard, state.version, 200);
      continue;
    }
    const t0 = performance.now();
    if (state.version !== have) {
      const weights = await ctx.channel.pullWeights(state, ctx.weights);
      if (!weights) continue;
      ctx.layout.writeWeights(weights);
      have = state.version;
    }
    const s = stepOn(ctx, cursor, true);
    await delay(ctx);
    await ctx.channel.push(
      { kind: 'grad', shard: ctx.shard, version: have, step: cursor, ...s, ms: performance.now() - t0 },
      s.samples > 0 ? ctx.payload : undefined,
      cursor + 1,
    );
    cursor += 1;
    tally(ctx, 1, s.samples);
    await reportShardProgress(ctx, cursor);
  }
  await ctx.channel.push({ kind: 'done', shard: ctx.shard });
}

/** Our slice of one global step's batch, as tensors (the caller disposes them). */
interface Batch {
  n: number;
  x: tf.Tensor;
  y: tf.Tensor;
}
/** A batch gathered ahead of time for global step `step` (null: that step has no rows of ours). */
interface Ahead {
  step: number;
  batch: Batch | null;
}

function prepareBatch(ctx: ShardContext, step: number): Batch | null {
  const { epoch, start, end } = shardSlice(ctx.run.plan, step, ctx.shard);
  const n = end - start;
  if (n <= 0) return null;
  const batch = gatherBatch(ctx.run.train, ctx.orders.get(epoch), start, n);
  const y = tf.tensor1d(batch.y, labelDtype(ctx.run.train));
  return { n, x: tf.tensor(batch.x, [n, ...ctx.inputShape], 'float32'), y };
}

/**
 * One forward/backward pass on our slice of global step `step` (on `ready`, gathered ahead of
 * time, when it is that step's). With an optimizer (local mode) the gradient is applied here;
 * otherwise it is packed into ctx.payload for the aggregator.
 */
function stepOn(ctx: ShardContext, step: number, pack: boolean, optimizer?: tf.Optimizer, ready?: Ahead): StepStats {
  if (ready?.batch && ready.step !== step) tf.dispose([ready.batch.x, ready.batch.y]);
  const batch = ready?.step === step ? ready.batch : prepareBatch(ctx, step);
  if (!batch) return { samples: 0, loss: 0, correct: 0, absErr: 0, sqErr: 0 };
  const regression = ctx.run.loss.task === 'regression';
  const r = computeGradients(ctx.model, batch.x, batch.y, {
    countCorrect: !regression,
    regressionErrors: regression,
    loss: ctx.run.loss,
  });
  try {
    if (optimizer) applyGradients(optimizer, r.grads);
    if (optimizer) ctx.masks?.apply();
    if (pack) ctx.layout.packGradients(r.grads, ctx.payload);
    const [absErr, sqErr] = r.errors ? r.errors.dataSync() : [0, 0];
    return {
      samples: batch.n,
      loss: r.loss.dataSync()[0]!,
      correct: r.correct ? r.correct.dataSync()[0]! : 0,
      absErr: absErr ?? 0,
      sqErr: sqErr ?? 0,
    };
  } finally {
    tf.dispose([batch.x, batch.y, r.loss, r.grads, ...(r.correct ? [r.correct] : []), ...(r.errors ? [r.errors] : [])]);
  }
}

/**
 * Throws when this job's signal aborted (its reason), or when a newer attempt of this job took
 * over (SupersededError; looked at most once a second).
 */
async function checkGoOn(ctx: ShardContext): Promise<void> {
  ctx.hooks.signal.throwIfAborted();
  const now = Date.now();
  if (now - ctx.lastClaimCheckAt < 1000) return;
  ctx.lastClaimCheckAt = now;
  if (await ctx.channel.isSuperseded(ctx.claim)) throw new SupersededError(ctx.channel.opts.runId, ctx.claim.role);
}

/** RunChannel.waitForState, retried with backoff while Redis is away. */
function waitForWeights(ctx: ShardContext, afterVersion: number, timeoutMs: number): Promise<PublishedState | null> {
  return ctx.retry.run(
    'waiting for weights',
    () => ctx.channel.waitForState(ctx.shard, afterVersion, timeoutMs),
    ctx.hooks.signal,
  );
}

function tally(ctx: ShardContext, steps: number, samples: number): void {
  ctx.steps += steps;
  ctx.samples += samples;
}

async function delay(ctx: ShardContext): Promise<void> {
  if (ctx.deps.stepDelayMs) await new Promise((resolve) => setTimeout(resolve, ctx.deps.stepDelayMs));
}

/** The run's keys are gone (cleaned up) or it was marked ended: nothing left to wait for. */
async function runGone(ctx: ShardContext): Promise<boolean> {
  return (await ctx.channel.isEnded()) || (await ctx.channel.readState()) === null;
}

async function reportShardProgress(ctx: ShardContext, step: number): Promise<void> {
  const now = Date.now();
  if (now - ctx.lastProgressAt < 1000) return;
  ctx.lastProgressAt = now;
  const progress: DistributedProgress = {
    step,
    percent: Math.min(100, (100 * step) / ctx.run.plan.totalSteps),
    samplesPerSec: 0,
  };
  await ctx.hooks.onProgress(progress);
}
