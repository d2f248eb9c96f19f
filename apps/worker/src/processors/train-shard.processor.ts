import { Processor } from '@nestjs/bullmq';
import { JobName, QueueName, type TrainShardJobData, type TrainShardResult } from '@tq/contracts';
import { runShard } from '@tq/paramserver';
import { HandlesJob, RedisClientHolder, TypedWorkerHost, type TypedJob } from '@tq/queue';
import { ArtifactStore, DatasetStore } from '@tq/storage';
import { signalHooks } from '../signal-hooks';
import { workerOptions } from '../worker-options';

/** One worker's share of a data-parallel run: pull weights, push gradients of its shard. */
@Processor(QueueName.TrainShard, workerOptions())
@HandlesJob(JobName.TrainShard)
export class TrainShardProcessor extends TypedWorkerHost<JobName.TrainShard> {
  protected readonly jobName = JobName.TrainShard;

  constructor(private readonly redis: RedisClientHolder, private readonly store: ArtifactStore, private readonly datasets: DatasetStore) {
    super();
  }

  protected async handle(job: TypedJob<JobName.TrainShard>, data: TrainShardJobData): Promise<TrainShardResult> {
    const hooks = signalHooks(job, this.redis, this.worker);
    try {
      return await runShard(data, { redis: this.redis.client, store: this.store, datasets: this.datasets, keyPrefix: this.redis.prefix }, hooks);
    } finally {
      hooks.dispose();
    }
  }
}
