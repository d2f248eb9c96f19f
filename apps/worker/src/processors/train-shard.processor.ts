import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type DistributedProgress,
  type JobHooks,
  type TrainShardJobData,
  type TrainShardResult,
} from '@tq/contracts';
import { runShard, type ShardDeps } from '@tq/paramserver';
import { CancelWatcher, HandlesJob, RedisClientHolder, TypedWorkerHost } from '@tq/queue';
import { ArtifactStore, DatasetStore } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';
import { paramServerDeps } from './param-server-deps';

/** One worker's share of a data-parallel run: pull weights, push gradients of its shard. */
@Processor(QueueName.TrainShard, workerOptions(JobName.TrainShard))
@HandlesJob(JobName.TrainShard)
export class TrainShardProcessor extends TypedWorkerHost<JobName.TrainShard> {
  protected readonly jobName = JobName.TrainShard;
  private readonly deps: ShardDeps;

  private readonly stores: { store: ArtifactStore; datasets: DatasetStore };

  constructor(
    protected readonly cancels: CancelWatcher,
    redis: RedisClientHolder,
    store: ArtifactStore,
    datasets: DatasetStore,
  ) {
    super();
    this.stores = { store, datasets };
    this.deps = paramServerDeps(redis, store, datasets);
  }

  protected handle(data: TrainShardJobData, hooks: JobHooks<DistributedProgress>): Promise<TrainShardResult> {
    return runShard(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }
}
