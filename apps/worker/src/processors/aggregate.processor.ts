import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type AggregateJobData,
  type AggregateResult,
  type DistributedProgress,
  type JobHooks,
} from '@tq/contracts';
import { runAggregator, type AggregatorDeps } from '@tq/paramserver';
import { CancelWatcher, HandlesJob, RedisClientHolder, TypedWorkerHost } from '@tq/queue';
import { ArtifactStore, DatasetStore } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';
import { paramServerDeps } from './param-server-deps';

/** The parameter server of one data-parallel run, as a job: a dead aggregator is retried and resumes from its checkpoint. */
@Processor(QueueName.Aggregate, workerOptions(JobName.Aggregate))
@HandlesJob(JobName.Aggregate)
export class AggregateProcessor extends TypedWorkerHost<JobName.Aggregate> {
  protected readonly jobName = JobName.Aggregate;
  private readonly deps: AggregatorDeps;

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

  protected handle(data: AggregateJobData, hooks: JobHooks<DistributedProgress>): Promise<AggregateResult> {
    return runAggregator(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }
}
