import type * as tf from '@tensorflow/tfjs';
import type { Job, Queue } from 'bullmq';
import type Redis from 'ioredis';
import { trainRequestSchema, type JobMeta, type TrainJobData, type TrainProgress, type TrainResult } from '@tq/contracts';
import { initBackend, type BackendInfo } from '@tq/ml';
import type { ArtifactStore, ModelRegistry } from '@tq/storage';
import { runCheckpointPaths } from './aggregator';
import { RunChannel } from './channel';
import { enqueueRun, finishRun, runIdOf, settleAggregator } from './child-jobs';
import { checkRun, registerRun, resultOfVersion } from './register-run';
import { requireDistributed, type RunSources } from './run-setup';
import { DistributedRunCancelledError, waitForAggregator, type Watch } from './run-watch';

export interface CoordinatorDeps extends RunSources {
  redis: Redis;
  aggregateQueue: Queue;
  shardQueue: Queue;
  store: ArtifactStore;
  registry: ModelRegistry;
  backend?: BackendInfo;
  /** The train job's id (job.id when absent): the run id and the child job ids derive from it. */
  jobId?: string;
  onProgress?: (p: TrainProgress) => void | Promise<void>;
  /** Polled while waiting: true (or a throw) aborts the run, cleans up and ends the job. */
  shouldStop?: () => boolean | Promise<boolean>;
  /** Writes a trained model's artifacts into a registry staging folder (default: tfjs files + ONNX when exportable). */
  writeArtifacts?: (model: tf.LayersModel, dir: string) => Promise<void>;
  keyPrefix?: string;
  /** The train job's meta, handed on to its child jobs. */
  meta?: JobMeta;
  pollMs?: number;
  log?: (line: string) => void;
}

/**
 * The Train processor body when `request.distributed` is set. Enqueues the aggregator job and one
 * job per shard (ids derived from this job's id), forwards the aggregator's progress, waits for it,
 * registers ONE model version from the final weights, removes the run's Redis keys and checkpoint.
 *
 * Deployment rule: this function only waits (a poll every `pollMs`, no compute), but it occupies a
 * slot of the train queue's worker for the whole run. The shards and the aggregator run on workers
 * serving the train-shard and aggregate queues; in the worker app each queue has its own BullMQ
 * Worker, so one process with concurrency 1 can hold a coordinator, the aggregator and one shard at
 * once. A run of N workers needs N train-shard slots (N processes at concurrency 1: two shards in one
 * process share one JS thread) and one aggregate slot somewhere. With fewer, sync steps close on the
 * step timeout with the quorum that is there; below the quorum the run stalls and the aggregator fails.
 */
export async function coordinateDistributedTraining(job: Job<TrainJobData, TrainResult, string>, deps: CoordinatorDeps): Promise<TrainResult> {
  const request = trainRequestSchema.parse(job.data);
  const spec = requireDistributed(request);
  const parentJobId = deps.jobId ?? job.id;
  if (!parentJobId) throw new Error('the train job has no id');
  const runId = runIdOf(parentJobId);
  const log = deps.log ?? (() => undefined);
  const backend = deps.backend ?? (await initBackend());

  const existing = (await deps.registry.versions(request.model.name)).find((v) => v.lineage.jobId === parentJobId);
  if (existing) return resultOfVersion(existing, backend.name, undefined); // registered by an earlier attempt

  // Bad input (a model that does not fit the data, ...) fails here, before any child job exists.
  await checkRun(request, deps, parentJobId);
  const channel = new RunChannel(deps.redis, { runId, shards: spec.workers, prefix: deps.keyPrefix ?? deps.aggregateQueue.opts.prefix ?? 'bull' });
  const paths = runCheckpointPaths(deps.store, runId);
  const watch: Watch = { cancelled: false, aggregatorFailed: false };
  try {
    await deps.onProgress?.({ stage: 'loading', percent: 0 });
    await enqueueRun(deps, channel, runId, parentJobId, request);
    const outcome = await waitForAggregator(deps, channel, runId, spec.workers, watch, log);
    if (outcome.status === 'aborted') { watch.cancelled = true; throw new DistributedRunCancelledError(runId); }
    await deps.onProgress?.({ stage: 'saving', percent: 100, epochs: request.fit.epochs, epoch: request.fit.epochs, step: outcome.steps });
    const meta = await registerRun(deps, request, parentJobId, outcome, paths.final, backend.name);
    await finishRun(deps, channel, runId, spec.workers, paths.dir, log);
    return resultOfVersion(meta, backend.name, outcome, spec);
  } catch (err) {
    if (watch.cancelled) {
      await channel.abort();
      // Let the aggregator see the flag and stop (within a second) before its keys are removed.
      await settleAggregator(deps, runId, 15_000);
      await finishRun(deps, channel, runId, spec.workers, paths.dir, log);
    } else if (watch.aggregatorFailed) {
      // Nothing runs any more; the checkpoint stays, so a retry of this job resumes from it.
      await channel.abort();
      await finishRun(deps, channel, runId, spec.workers, undefined, log);
    }
    // Any other error (Redis hiccup, this process's own trouble): the run goes on untouched and
    // a retry of this job re-attaches to it.
    throw err;
  } finally {
    await channel.close();
  }
}

