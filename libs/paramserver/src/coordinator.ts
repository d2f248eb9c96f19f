import type * as tf from '@tensorflow/tfjs';
import type { Job, Queue } from 'bullmq';
import type Redis from 'ioredis';
import {
  aggregateResultSchema, DEFAULT_JOB_OPTIONS, JobName, trainRequestSchema,
  type AggregateJobData, type AggregateResult, type DistributedProgress, type ModelVersionMeta, type TrainJobData, type TrainProgress, type TrainResult,
} from '@tq/contracts';
import { exportOnnx, initBackend, type BackendInfo } from '@tq/ml';
import { fileSaveHandler, removeDir, type ArtifactStore, type ModelRegistry } from '@tq/storage';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpointWeights } from './aggregator-state';
import { runCheckpointPaths } from './aggregator';
import { RunChannel } from './channel';
import { loadRunData, requireDistributed, startingModel, type RunSources } from './run-setup';

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
  pollMs?: number;
  log?: (line: string) => void;
}

export class DistributedRunCancelledError extends Error {
  constructor(runId: string) { super(`distributed run ${runId} was cancelled`); }
}

/** Child job ids are derived from the parent's, so a retried coordinator re-attaches instead of duplicating. */
export function runIdOf(parentJobId: string): string {
  return parentJobId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120);
}
export const aggregatorJobId = (runId: string): string => `ps-agg-${runId}`;
export const shardJobId = (runId: string, shard: number): string => `ps-shard-${runId}-${shard}`;

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

  const channel = new RunChannel(deps.redis, { runId, shards: spec.workers, prefix: deps.keyPrefix ?? deps.aggregateQueue.opts.prefix ?? 'bull' });
  const paths = runCheckpointPaths(deps.store, runId);
  const watch: Watch = { cancelled: false, aggregatorFailed: false };
  try {
    await deps.onProgress?.({ stage: 'loading', percent: 0 });
    await enqueue(deps, channel, runId, parentJobId, request);
    const outcome = await waitForAggregator(deps, channel, runId, spec.workers, watch, log);
    if (outcome.status === 'aborted') { watch.cancelled = true; throw new DistributedRunCancelledError(runId); }
    await deps.onProgress?.({ stage: 'saving', percent: 100, epochs: request.fit.epochs, epoch: request.fit.epochs, step: outcome.steps });
    const meta = await register(deps, request, parentJobId, outcome, paths.final, backend.name);
    await finish(deps, channel, runId, spec.workers, paths.dir, log);
    return resultOfVersion(meta, backend.name, outcome, spec);
  } catch (err) {
    if (watch.cancelled) {
      await channel.abort();
      // Let the aggregator see the flag and stop (within a second) before its keys are removed.
      await settle(deps, runId, 15_000);
      await finish(deps, channel, runId, spec.workers, paths.dir, log);
    } else if (watch.aggregatorFailed) {
      // Nothing runs any more; the checkpoint stays, so a retry of this job resumes from it.
      await channel.abort();
      await finish(deps, channel, runId, spec.workers, undefined, log);
    }
    // Any other error (Redis hiccup, this process's own trouble): the run goes on untouched and
    // a retry of this job re-attaches to it.
    throw err;
  } finally {
    await channel.close();
  }
}

interface Watch { cancelled: boolean; aggregatorFailed: boolean }

/** Waits (at most `timeoutMs`) until the aggregator job is no longer running. */
async function settle(deps: CoordinatorDeps, runId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const job = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
    if (!job || (await job.getState()) !== 'active') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Removes the run's keys (leaving the ended marker), leftover waiting child jobs and, if given, the checkpoint folder. */
async function finish(deps: CoordinatorDeps, channel: RunChannel, runId: string, shards: number, checkpointDir: string | undefined, log: (l: string) => void): Promise<void> {
  await removeWaitingChildren(deps, runId, shards).catch((e: unknown) => log(`leftover child jobs: ${String(e)}`));
  await channel.cleanup();
  if (checkpointDir) await removeDir(checkpointDir);
}

async function enqueue(deps: CoordinatorDeps, channel: RunChannel, runId: string, parentJobId: string, request: TrainJobData): Promise<void> {
  const spec = requireDistributed(request);
  const aggId = aggregatorJobId(runId);
  const previous = await deps.aggregateQueue.getJob(aggId);
  if (previous && (await previous.getState()) === 'completed' && aggregateResultSchema.safeParse(previous.returnvalue).data?.status === 'done') return;
  // (Re)starting: lift an abort or end left by an earlier attempt, forget an aborted aggregator.
  await channel.reopen();
  if (previous && (await previous.getState()) === 'completed') await previous.remove();
  const data: AggregateJobData = { runId, parentJobId, request };
  // add() with an existing id returns the existing job: a retried coordinator re-attaches.
  const agg = await deps.aggregateQueue.add(JobName.Aggregate, data, { ...DEFAULT_JOB_OPTIONS[JobName.Aggregate], jobId: aggId });
  if ((await agg.getState()) === 'failed') await agg.retry('failed');
  for (let i = 0; i < spec.workers; i++) {
    const id = shardJobId(runId, i);
    const old = await deps.shardQueue.getJob(id);
    if (old && (await old.getState()) === 'completed') await old.remove(); // finished with an aborted attempt
    const shard = await deps.shardQueue.add(JobName.TrainShard, { runId, shardIndex: i, shards: spec.workers, request }, { ...DEFAULT_JOB_OPTIONS[JobName.TrainShard], jobId: id });
    if ((await shard.getState()) === 'failed') await shard.retry('failed');
  }
}

/** Polls the aggregator job until it finishes; forwards its progress; tells it about shards that failed for good. */
async function waitForAggregator(deps: CoordinatorDeps, channel: RunChannel, runId: string, shards: number, watch: Watch, log: (l: string) => void): Promise<AggregateResult> {
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
          await channel.push({ kind: 'gone', shard: i });
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

async function register(
  deps: CoordinatorDeps, request: TrainJobData, parentJobId: string, outcome: AggregateResult, finalPath: string, backend: string,
): Promise<ModelVersionMeta> {
  const data = await loadRunData(request, deps);
  const { model, lineage } = await startingModel(request, deps, parentJobId);
  try {
    await loadCheckpointWeights(finalPath, model);
    return await deps.registry.register(request.model.name, {
      inputShape: data.inputShape, featureCount: data.featureCount, classes: data.classes, layers: request.model.layers,
      metrics: outcome.metrics ?? { loss: Number.NaN }, history: outcome.history, lineage, backend, weightDtype: 'float32',
    }, (dir) => (deps.writeArtifacts ?? defaultArtifacts)(model, dir));
  } finally {
    model.dispose();
  }
}

async function defaultArtifacts(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileSaveHandler(dir));
  try {
    await writeFile(join(dir, 'model.onnx'), exportOnnx(model));
  } catch {
    // A model ONNX cannot express is still served by tfjs.
  }
}

/** Waiting or delayed child jobs (never started, or between retries) have nothing left to do. */
async function removeWaitingChildren(deps: CoordinatorDeps, runId: string, shards: number): Promise<void> {
  const jobs = [await deps.aggregateQueue.getJob(aggregatorJobId(runId))];
  for (let i = 0; i < shards; i++) jobs.push(await deps.shardQueue.getJob(shardJobId(runId, i)));
  for (const job of jobs) {
    const state = job ? await job.getState() : 'unknown';
    if (job && (state === 'waiting' || state === 'delayed' || state === 'prioritized')) await job.remove();
  }
}

function resultOfVersion(meta: ModelVersionMeta, backend: string, outcome: AggregateResult | undefined, spec?: { workers: number; mode: string }): TrainResult {
  return {
    model: { name: meta.name, version: meta.version },
    metrics: { loss: meta.metrics?.loss ?? Number.NaN, ...meta.metrics },
    epochs: meta.history?.length ?? 0,
    samplesPerSec: outcome?.samplesPerSec ?? 0,
    backend,
    ...(outcome && spec ? { distributed: { workers: spec.workers, mode: spec.mode, steps: outcome.steps, droppedStale: outcome.droppedStale } } : {}),
  };
}

