import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import {
  JobName,
  QueueName,
  type JobHooks,
  type TrainJobData,
  type TrainProgress,
  type TrainResult,
} from '@tq/contracts';
import { trainJob, type DistributedTrainDeps } from '@tq/jobs';
import type { BackendInfo } from '@tq/ml';
import { CancelWatcher, HandlesJob, RedisClientHolder, TypedWorkerHost } from '@tq/queue';
import { jobRetention, loadConfig, tableLimits } from '@tq/config';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';

@Processor(QueueName.Train, workerOptions(JobName.Train))
@HandlesJob(JobName.Train)
export class TrainProcessor extends TypedWorkerHost<JobName.Train> {
  protected readonly jobName = JobName.Train;
  private readonly deps: DistributedTrainDeps;
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
    this.deps = {
      registry,
      datasets,
      store,
      backend,
      budgets: loadConfig(),
      retention: jobRetention(loadConfig()),
      redisRetryMaxMs: loadConfig().REDIS_RETRY_MAX_MS,
      tableLimits: tableLimits(loadConfig()),
      redis: redis.client,
      keyPrefix: redis.prefix,
      aggregateQueue,
      shardQueue,
    };
  }

  protected handle(data: TrainJobData, hooks: JobHooks<TrainProgress>): Promise<TrainResult> {
    return trainJob(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }
}
