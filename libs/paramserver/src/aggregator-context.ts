import type * as tf from '@tensorflow/tfjs';
import type { DistributedProgress, DistributedSpec, JobHooks } from '@tq/contracts';
import {
  evaluate,
  regressionMetrics,
  validationEntry,
  validationLoss,
  type EarlyStopping,
  type SparsityHold,
} from '@tq/ml';
import { epochStart, saveAggregatorCheckpoint, type AggregatorState } from './aggregator-state';
import { SupersededError, type Claim, type RunChannel } from './channel';
import type { RedisRetry } from './redis-retry';
import type { RunData } from './run-setup';
import { progressOf } from './progress';
import type { RunStatus } from './messages';
import type { WeightLayout } from './weight-layout';
import type { BlobRef } from '@tq/storage';

/** One aggregator attempt: the model and optimizer it owns, its state, and where it talks and saves. */
export interface AggregatorContext {
  hooks: JobHooks<DistributedProgress>;
  channel: RunChannel;
  /** This attempt's hold on the aggregator role: a newer attempt ends this one. */
  claim: Claim;
  model: tf.LayersModel;
  layout: WeightLayout;
  optimizer: tf.Optimizer;
  spec: DistributedSpec;
  run: RunData;
  state: AggregatorState;
  checkpointPath: BlobRef;
  fingerprint: string;
  progressEveryMs: number;
  log: (line: string) => void;
  /** Scratch for published weights, reused every step. */
  weights: Float32Array;
  lastLoss?: number;
  lastProgressAt: number;
  lastAbortCheckAt: number;
  /** Shards no worker has taken (the coordinator's word, read with the abort flag): steps do not wait for them. */
  unstaffed: ReadonlySet<number>;
  /** Retries this attempt's Redis reads through an outage (backoff), instead of failing the job. */
  retry: RedisRetry;
  /** Shards that missed a step's deadline and have not posted since: steps do not wait for them (barrier-loop). */
  lagging: Set<number>;
  /** fit.earlyStopping: @tq/ml's EarlyStopping (as trainModel uses it), fed at every epoch end. */
  early?: EarlyStopping;
  /** fit.prune: the masks, re-applied after every update (trainModel's SparsityHold). */
  sparsity?: SparsityHold;
}

/** The run ended before its last epoch: fit.earlyStopping's patience ran out. */
export function stoppedEarly(ctx: AggregatorContext): boolean {
  return ctx.early?.state.stopped ?? false;
}

/**
 * Checkpoints the state, weights and optimizer, with early stopping's best weights when it runs.
 * The aggregator job's own fence checks its lock right before the rename: a stale attempt (its
 * lock lapsed while it stalled) never puts its state over the live attempt's, nor writes final.ckpt.
 */
export async function saveCheckpoint(ctx: AggregatorContext, path: BlobRef): Promise<void> {
  const best = ctx.early ? await ctx.early.encodeBest() : undefined;
  const fence = ctx.hooks.fence;
  await saveAggregatorCheckpoint(path, ctx.state, ctx.fingerprint, ctx.model, ctx.optimizer, {
    ...(best ? { best } : {}),
    ...(fence ? { beforeCommit: () => fence.assertHeld() } : {}),
  });
}

export async function publishWeights(ctx: AggregatorContext, status: RunStatus = 'running'): Promise<void> {
  const w = ctx.layout.readWeights(ctx.weights);
  await ctx.channel.publish({ version: ctx.state.version, step: ctx.state.step, status, floats: w.length }, w);
}

/**
 * Polls the coordinator's abort flag at most once a second (and whether a newer attempt of this
 * job took over: then this one throws SupersededError). This job's own signal (cancelled, or
 * its worker shutting down) is not the run's end: it throws its reason, ending this attempt only.
 */
export async function abortRequested(ctx: AggregatorContext): Promise<boolean> {
  ctx.hooks.signal.throwIfAborted();
  const now = Date.now();
  if (now - ctx.lastAbortCheckAt < 1000) return false;
  ctx.lastAbortCheckAt = now;
  const control = await ctx.retry.run('reading the run control', () => ctx.channel.readControl(ctx.claim));
  if (control.superseded) throw new SupersededError(ctx.channel.opts.runId, ctx.claim.role);
  ctx.unstaffed = new Set(control.unstaffed);
  return control.aborted;
}

export interface StepOutcome {
  samples: number;
  lossSum: number;
  correct: number;
  /** Regression: sums of |error| and error² (standardized target). */
  absErr: number;
  sqErr: number;
}

/**
 * Book-keeping after an update: the epoch's sample-weighted loss/accuracy (what trainModel reports),
 * the epoch's validation when it ends, a checkpoint every `checkpointEvery` steps, throttled progress.
 * `progressBefore`/`progressAfter` are in global steps (async: the shards' mean consumed steps).
 */
export async function afterUpdate(
  ctx: AggregatorContext,
  out: StepOutcome,
  progressBefore: number,
  progressAfter: number,
  stepBefore: number,
): Promise<void> {
  const { state, run, spec } = ctx;
  state.epoch.lossSum += out.lossSum;
  state.epoch.correct += out.correct;
  state.epoch.samples += out.samples;
  state.epoch.absErr = (state.epoch.absErr ?? 0) + out.absErr;
  state.epoch.sqErr = (state.epoch.sqErr ?? 0) + out.sqErr;
  if (out.samples > 0) ctx.lastLoss = out.lossSum / out.samples;
  const epochNow = Math.floor(progressAfter / run.plan.stepsPerEpoch);
  if (epochNow > state.epoch.index && state.epoch.index < run.plan.epochs && !stoppedEarly(ctx))
    await closeEpoch(ctx, epochNow);
  if (Math.floor(state.step / spec.checkpointEvery) !== Math.floor(stepBefore / spec.checkpointEvery)) {
    await saveCheckpoint(ctx, ctx.checkpointPath);
  }
  await reportProgress(
    ctx,
    progressAfter >= run.plan.totalSteps || epochNow > Math.floor(progressBefore / run.plan.stepsPerEpoch),
  );
}

/**
 * Ends the accumulating epoch: its training means plus validation of the current weights, then
 * early stopping's verdict on it (the run loops end once it says stop).
 */
export async function closeEpoch(ctx: AggregatorContext, nextIndex: number): Promise<void> {
  const { state, run } = ctx;
  const e = state.epoch;
  // trainMs: training wall time so far (all attempts), so a reader can tell time-to-accuracy.
  const entry: Record<string, number> = {
    epoch: e.index + 1,
    loss: e.samples ? e.lossSum / e.samples : Number.NaN,
    ...(run.loss.task === 'classification'
      ? { accuracy: e.samples ? e.correct / e.samples : Number.NaN }
      : trainErrors(ctx)),
    trainMs: Math.round(state.trainMs),
  };
  if (run.validation) {
    const v = await evaluate(
      ctx.model,
      run.validation,
      Math.max(run.plan.batchPerWorker, 1024),
      validationLoss(run.loss),
    );
    Object.assign(entry, validationEntry(v));
  }
  state.history.push(entry);
  if (ctx.early) {
    ctx.early.update(ctx.model, entry.epoch!, entry);
    state.earlyStopping = { ...ctx.early.state };
  }
  const shown = Object.entries(entry).filter(([k]) => k !== 'epoch' && k !== 'trainMs');
  ctx.log(`epoch ${entry.epoch}: ${shown.map(([k, v]) => `${k} ${v.toFixed(4)}`).join(' ')}`);
  state.epoch = epochStart(nextIndex);
  if (stoppedEarly(ctx)) {
    const { bestEpoch } = ctx.early!.state;
    ctx.log(`early stopping after epoch ${entry.epoch}: no better ${ctx.early!.spec.monitor} since epoch ${bestEpoch}`);
  }
}

/**
 * A regression epoch's training mae/rmse/r2 as trainModel reports them (@tq/ml's regressionMetrics
 * over the training rows). The sums are scaled to the rows of an epoch: async epochs (the shards'
 * mean cursor) and the last partial one need not hold exactly one epoch's rows.
 */
function trainErrors(ctx: AggregatorContext): Record<string, number> {
  const e = ctx.state.epoch;
  if (!e.samples) return {};
  const scale = ctx.run.train.rows / e.samples;
  return regressionMetrics(ctx.run.train, (e.absErr ?? 0) * scale, (e.sqErr ?? 0) * scale);
}

export async function reportProgress(ctx: AggregatorContext, force = false): Promise<void> {
  const now = Date.now();
  if (!force && now - ctx.lastProgressAt < ctx.progressEveryMs) return;
  ctx.lastProgressAt = now;
  await ctx.hooks.onProgress(progressOf(ctx.state, ctx.run.plan, ctx.spec.mode, ctx.lastLoss));
}
