import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import {
  JobName,
  QueueName,
  type CompressJobData,
  type CompressProgress,
  type CompressResult,
  type JobHooks,
} from '@tq/contracts';
import { jobRetention, loadConfig, tableLimits } from '@tq/config';
import { compressJob, type CompressDeps } from '@tq/jobs';
import type { BackendInfo } from '@tq/ml';
import type { CoordinatorDeps } from '@tq/paramserver';
import { CancelWatcher, HandlesJob, RedisClientHolder, TypedWorkerHost } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';

@Processor(QueueName.Compress, workerOptions(JobName.Compress))
@HandlesJob(JobName.Compress)
export class CompressProcessor extends TypedWorkerHost<JobName.Compress> {
  protected readonly jobName = JobName.Compress;
  private readonly deps: CompressDeps;
  private readonly dataParallel: CoordinatorDeps;
  private readonly stores: { registry: ModelRegistry; datasets: DatasetStore; store: ArtifactStore };

  constructor(
    protected readonly cancels: CancelWatcher,
    registry: ModelRegistry,
    datasets: DatasetStore,
    store: ArtifactStore,
    redis: RedisClientHolder,
    @InjectBackend() backend: BackendInfo,
    @InjectQueue(QueueName.Aggregate) aggregateQueue: Queue,
    @InjectQueue(QueueName.TrainShard) shardQueue: Queue,
  ) {
    super();
    this.stores = { registry, datasets, store };
    const config = loadConfig();
    // The store: fine-tuning and distillation checkpoint every epoch, so a retried job resumes them.
    this.deps = { registry, datasets, store, backend, tableLimits: tableLimits(config) };
    // A prune step's data-parallel fine-tune runs as a train run does (aggregator and shard jobs).
    this.dataParallel = {
      redis: redis.client,
      keyPrefix: redis.prefix,
      aggregateQueue,
      shardQueue,
      store,
      registry,
      datasets,
      backend,
      retention: jobRetention(config),
      redisRetryMaxMs: config.REDIS_RETRY_MAX_MS,
      tableLimits: tableLimits(config),
    };
  }

  protected handle(data: CompressJobData, hooks: JobHooks<CompressProgress>): Promise<CompressResult> {
    const stores = storesFor(this.stores, hooks.meta.tenant);
    return compressJob(data, { ...this.deps, ...stores, dataParallel: { ...this.dataParallel, ...stores } }, hooks);
  }
}
