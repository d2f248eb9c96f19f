import { Processor } from '@nestjs/bullmq';
import { JobName, QueueName, type AggregateJobData, type AggregateResult } from '@tq/contracts';
import { runAggregator } from '@tq/paramserver';
import { HandlesJob, RedisClientHolder, TypedWorkerHost, type TypedJob } from '@tq/queue';
import { ArtifactStore, DatasetStore } from '@tq/storage';
import { signalHooks } from '../signal-hooks';
import { workerOptions } from '../worker-options';

/** The parameter server of one data-parallel run, as a job: a dead aggregator is retried and resumes from its checkpoint. */
@Processor(QueueName.Aggregate, workerOptions())
@HandlesJob(JobName.Aggregate)
export class AggregateProcessor extends TypedWorkerHost<JobName.Aggregate> {
  protected readonly jobName = JobName.Aggregate;

  constructor(private readonly redis: RedisClientHolder, private readonly store: ArtifactStore, private readonly datasets: DatasetStore) {
    super();
  }

  protected async handle(job: TypedJob<JobName.Aggregate>, data: AggregateJobData): Promise<AggregateResult> {
    const hooks = signalHooks(job, this.redis, this.worker);
    try {
      return await runAggregator(data, { redis: this.redis.client, store: this.store, datasets: this.datasets, keyPrefix: this.redis.prefix }, hooks);
    } finally {
      hooks.dispose();
    }
  }
}
