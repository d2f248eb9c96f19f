import type { DistributedProgress } from '@tq/contracts';
import type { AggregatorState } from './aggregator-state';
import type { RunPlan } from './data-order';

/** Shard names in progress reports: "shard-0", "shard-1", ... */
export const shardName = (i: number): string => `shard-${i}`;

/** Rows a shard contributed and an exponential moving average of its step time. */
export function recordShare(state: AggregatorState, shard: number, samples: number, ms: number): void {
  const name = shardName(shard);
  const w = state.workers[name];
  if (!w) state.workers[name] = { samples, stepMs: ms };
  else {
    w.samples += samples;
    w.stepMs = w.stepMs * 0.8 + ms * 0.2;
  }
}

/** A payload of `shard` computed on weights too old to use. */
export function recordDrop(state: AggregatorState, shard: number): void {
  state.droppedStale++;
  const w = (state.workers[shardName(shard)] ??= { samples: 0, stepMs: 0 });
  w.dropped = (w.dropped ?? 0) + 1;
}

export function slowestWorker(state: AggregatorState): string | undefined {
  let slowest: string | undefined;
  let worst = -1;
  for (const [name, w] of Object.entries(state.workers))
    if (w.stepMs > worst) {
      worst = w.stepMs;
      slowest = name;
    }
  return slowest;
}

/** The aggregator's progress, shaped so the coordinator can forward it as TrainProgress. */
export function progressOf(
  state: AggregatorState,
  plan: RunPlan,
  mode: string,
  lastLoss: number | undefined,
): DistributedProgress {
  // async: work done is the shards' consumed local steps; sync/local: global steps.
  const done = mode === 'async' ? state.shardSteps.reduce((a, b) => a + b, 0) / plan.workers : state.step;
  const slowest = slowestWorker(state);
  return {
    step: state.step,
    percent: Math.min(100, (100 * done) / plan.totalSteps),
    totalSteps: plan.totalSteps,
    epoch: Math.min(plan.epochs, Math.floor(done / plan.stepsPerEpoch) + 1),
    epochs: plan.epochs,
    ...(lastLoss !== undefined && Number.isFinite(lastLoss) ? { loss: lastLoss } : {}),
    samplesPerSec: state.trainMs > 0 ? state.samples / (state.trainMs / 1000) : 0,
    droppedStale: state.droppedStale,
    version: state.version,
    workers: state.workers,
    ...(slowest ? { slowestWorker: slowest } : {}),
  };
}
