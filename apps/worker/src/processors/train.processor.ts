import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { JobName, QueueName, type TrainJobData, type TrainResult } from '@tq/contracts';
import type { BackendInfo } from '@tq/ml';
import { coordinateDistributedTraining } from '@tq/paramserver';
import { HandlesJob, RedisClientHolder, TypedWorkerHost, jobHooks, type TypedJob } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { runTraining } from '../runners/train.runner';
import { signalHooks } from '../signal-hooks';
import { workerOptions } from '../worker-options';

@Processor(QueueName.Train, workerOptions())
@HandlesJob(JobName.Train)
export class TrainProcessor extends TypedWorkerHost<JobName.Train> {
  protected readonly jobName = JobName.Train;

  constructor(
    private readonly registry: ModelRegistry, private readonly datasets: DatasetStore, private readonly store: ArtifactStore,
    private readonly redis: RedisClientHolder, @InjectBackend() private readonly backend: BackendInfo,
    @InjectQueue(QueueName.Aggregate) private readonly aggregateQueue: Queue, @InjectQueue(QueueName.TrainShard) private readonly shardQueue: Queue,
  ) {
    super();
  }

  protected async handle(job: TypedJob<JobName.Train>, data: TrainJobData): Promise<TrainResult> {
    const hooks = jobHooks(job, this.redis);
    const deps = { registry: this.registry, datasets: this.datasets, store: this.store, backend: this.backend };
    if (data.distributed) {
      const signalled = signalHooks(job, this.redis, this.worker);
      try {
        const queues = { aggregateQueue: this.aggregateQueue, shardQueue: this.shardQueue };
        return await coordinateDistributedTraining(data, { ...deps, ...queues, redis: this.redis.client }, signalled);
      } finally {
        signalled.dispose();
      }
    }
    return runTraining(data, deps, hooks);
  }
}
