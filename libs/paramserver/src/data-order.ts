import { mixSeed, seededPermutation } from '@tq/ml';

/**
 * Which rows each shard trains on, derived from numbers alone (seed, epoch, global step), so every
 * process, a restarted one included, computes the same order without talking to anyone.
 *
 * Global step s reads global batch k = s mod stepsPerEpoch of epoch e = floor(s / stepsPerEpoch):
 * positions [k*B, min((k+1)*B, n)) of that epoch's seeded permutation, B = workers x batchPerWorker.
 * Shard i takes the contiguous i-th of N near-equal parts of that batch. The parts are disjoint and
 * cover the batch, so every training row is used exactly once per epoch, and the sample-weighted mean
 * of the shards' mean-loss gradients is exactly the gradient of the whole batch: sync training with
 * N shards of b rows equals single-process training with batches of N x b rows in the same order.
 */
export interface RunPlan {
  trainRows: number;
  workers: number;
  batchPerWorker: number;
  globalBatch: number;
  stepsPerEpoch: number;
  epochs: number;
  totalSteps: number;
  seed: number;
  shuffle: boolean;
}

export function makePlan(p: {
  trainRows: number;
  workers: number;
  batchPerWorker: number;
  epochs: number;
  seed: number;
  shuffle: boolean;
}): RunPlan {
  if (p.trainRows < 1) throw new Error('no training rows');
  const globalBatch = p.workers * p.batchPerWorker;
  const stepsPerEpoch = Math.ceil(p.trainRows / globalBatch);
  return { ...p, globalBatch, stepsPerEpoch, totalSteps: stepsPerEpoch * p.epochs };
}

/** Positions [start, end) in epoch `epoch`'s permutation that `shard` trains on at global step `step`. */
export function shardSlice(plan: RunPlan, step: number, shard: number): { epoch: number; start: number; end: number } {
  const epoch = Math.floor(step / plan.stepsPerEpoch);
  const first = (step % plan.stepsPerEpoch) * plan.globalBatch;
  const size = Math.min(plan.globalBatch, plan.trainRows - first);
  return {
    epoch,
    start: first + Math.floor((shard * size) / plan.workers),
    end: first + Math.floor(((shard + 1) * size) / plan.workers),
  };
}

/**
 * The order of training rows in `epoch`: exactly the order the single-process loop (trainModel in
 * @tq/ml) uses, so a distributed run and a local one with the global batch size see the same batches.
 */
export function epochOrder(plan: RunPlan, epoch: number): Uint32Array {
  if (!plan.shuffle) return Uint32Array.from({ length: plan.trainRows }, (_, i) => i);
  return seededPermutation(plan.trainRows, mixSeed(plan.seed, epoch));
}

/** Keeps the last epoch's permutation: a shard reads many steps of the same epoch in a row. */
export class EpochOrderCache {
  private epoch = -1;
  private order: Uint32Array = new Uint32Array(0);
  constructor(private readonly plan: RunPlan) {}
  get(epoch: number): Uint32Array {
    if (epoch !== this.epoch) {
      this.order = epochOrder(this.plan, epoch);
      this.epoch = epoch;
    }
    return this.order;
  }
}
