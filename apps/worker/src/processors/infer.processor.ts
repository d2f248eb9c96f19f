import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import {
  JobName,
  QueueName,
  type InferJobData,
  type InferProgress,
  type InferResult,
  type JobHooks,
  type JobMeta,
} from '@tq/contracts';
import { jobRetention, loadConfig, tableLimits } from '@tq/config';
import {
  inferCleanup,
  inferJob,
  inferShardJobId,
  settleShards,
  stopShards,
  type InferDeps,
  type ShardQueue,
} from '@tq/jobs';
import { InferenceEngine, type BackendInfo } from '@tq/ml';
import { CancelWatcher, HandlesJob, RedisClientHolder, TypedWorkerHost, requestCancel } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';

@Processor(QueueName.Infer, workerOptions(JobName.Infer))
@HandlesJob(JobName.Infer)
export class InferProcessor extends TypedWorkerHost<JobName.Infer> {
  protected readonly jobName = JobName.Infer;
  private readonly deps: InferDeps;
  private readonly stores: {
    engine: InferenceEngine;
    registry: ModelRegistry;
    datasets: DatasetStore;
    inputs: JobInputStore;
    store: ArtifactStore;
  };

  constructor(
    protected readonly cancels: CancelWatcher,
    engine: InferenceEngine,
    registry: ModelRegistry,
    datasets: DatasetStore,
    inputs: JobInputStore,
    store: ArtifactStore,
    @InjectBackend() backend: BackendInfo,
    redis: RedisClientHolder,
    @InjectQueue(QueueName.InferShard) shardQueue: Queue,
  ) {
    super();
    this.stores = { engine, registry, datasets, inputs, store };
    const config = loadConfig();
    const shards: ShardQueue = {
      queue: shardQueue,
      retention: jobRetention(config),
      cancel: (id) => requestCancel(redis.client, redis.prefix, id, config.JOB_HISTORY_AGE_SECONDS),
    };
    this.deps = {
      engine,
      registry,
      datasets,
      inputs,
      store,
      backend,
      tableLimits: tableLimits(config),
      shards,
      maxErrors: config.INFER_MAX_ERRORS,
    };
  }

  protected handle(data: InferJobData, hooks: JobHooks<InferProgress>): Promise<InferResult> {
    return inferJob(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }

  /** A job that failed for good (or was cancelled) no longer needs its stored inline rows. */
  protected override async afterFinalFailure(data: InferJobData, jobId: string, meta: JobMeta): Promise<void> {
    const deps = storesFor(this.stores, meta.tenant);
    await inferCleanup(data, jobId, deps.inputs);
    // A cancelled or failed table job: its shards stop (those a worker runs see the cancel flag), its parts go.
    if ('dataset' in data.input && this.deps.shards) {
      const ids = await this.shardIds(jobId);
      await stopShards(this.deps.shards, ids);
      await settleShards(this.deps.shards, ids);
      await deps.store.blobs.deletePrefix(deps.store.outputPartsPrefix(jobId));
    }
  }

  /** The shard ids of job `jobId`: consecutive from 0 (the job data does not say how many there were). */
  private async shardIds(jobId: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; await this.deps.shards!.queue.getJob(inferShardJobId(jobId, i)); i++)
      ids.push(inferShardJobId(jobId, i));
    return ids;
  }
}
