import type { AggregateResult, DistributedProgress, TrainProgress } from '@tq/contracts';
import { aggregateResultSchema } from '@tq/contracts';
import type { RunChannel } from './channel';
import { aggregatorJobId, shardJobId } from './child-jobs';
import type { CoordinatorDeps } from './coordinator';
import { CANCELLED_REASON, CancelledError } from '@tq/contracts';

export class DistributedRunCancelledError extends CancelledError {
  constructor(runId: string) { super(`${CANCELLED_REASON}: distributed run ${runId}`); }
}

/** What went wrong, for the coordinator's clean-up: a stop request, or the aggregator failing for good. */
export interface Watch { cancelled: boolean; aggregatorFailed: boolean }

/** Polls the aggregator job until it finishes; forwards its progress; tells it about shards that failed for good. */
export async function waitForAggregator(deps: CoordinatorDeps, channel: RunChannel, runId: string, shards: number, watch: Watch, log: (l: string) => void): Promise<AggregateResult> {
  const gone = new Set<number>();
  let lastShardCheck = 0;
  for (;;) {
    // A throwing shouldStop (the worker app's way to cancel) counts as a stop too.
    watch.cancelled = true;
    if (await deps.shouldStop?.()) throw new DistributedRunCancelledError(runId);
    watch.cancelled = false;
    const agg = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
    if (!agg) throw new Error(`aggregator job of run ${runId} disappeared`);
    const state = await agg.getState();
    if (state === 'completed') {
      // Fetched again: the job read above may predate its completion (no return value yet).
      const done = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
      return aggregateResultSchema.parse(done?.returnvalue);
    }
    if (state === 'failed') { watch.aggregatorFailed = true; throw new Error(`aggregator of run ${runId} failed: ${agg.failedReason}`); }
    const p = agg.progress as DistributedProgress | number;
    if (typeof p === 'object' && p !== null && 'step' in p) await deps.onProgress?.(toTrainProgress(p));
    if (Date.now() - lastShardCheck > 2000) {
      lastShardCheck = Date.now();
      for (let i = 0; i < shards; i++) {
        if (gone.has(i)) continue;
        const shard = await deps.shardQueue.getJob(shardJobId(runId, i));
        if (shard && (await shard.getState()) === 'failed') {
          gone.add(i);
          log(`shard ${i} failed for good: ${shard.failedReason}`);
          await channel.markGone(i);
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, deps.pollMs ?? 500));
  }
}

function toTrainProgress(p: DistributedProgress): TrainProgress {
  return {
    stage: 'training', percent: Math.max(0, Math.min(100, p.percent)), step: p.step,
    ...(p.epoch !== undefined ? { epoch: p.epoch } : {}), ...(p.epochs !== undefined ? { epochs: p.epochs } : {}),
    ...(p.loss !== undefined ? { loss: p.loss } : {}), ...(p.samplesPerSec !== undefined ? { samplesPerSec: p.samplesPerSec } : {}),
    ...(p.workers ? { workers: p.workers } : {}), ...(p.slowestWorker ? { slowestWorker: p.slowestWorker } : {}),
  };
}
