import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type JobHooks,
  type JobMeta,
  type ProfileDatasetJobData,
  type ProfileDatasetProgress,
  type ProfileDatasetResult,
} from '@tq/contracts';
import { loadConfig, tableLimits } from '@tq/config';
import { profileDatasetCleanup, profileDatasetJob, type ProfileDatasetDeps } from '@tq/jobs';
import { CancelWatcher, HandlesJob, TypedWorkerHost } from '@tq/queue';
import { DatasetStore } from '@tq/storage';
import { workerOptions } from '../worker-options';

@Processor(QueueName.Datasets, workerOptions(JobName.ProfileDataset))
@HandlesJob(JobName.ProfileDataset)
export class ProfileDatasetProcessor extends TypedWorkerHost<JobName.ProfileDataset> {
  protected readonly jobName = JobName.ProfileDataset;
  private readonly deps: ProfileDatasetDeps;
  private readonly datasets: DatasetStore;

  constructor(
    protected readonly cancels: CancelWatcher,
    datasets: DatasetStore,
  ) {
    super();
    this.datasets = datasets;
    this.deps = { datasets, limits: tableLimits(loadConfig()), shardRows: loadConfig().INFER_SHARD_ROWS };
  }

  protected handle(
    data: ProfileDatasetJobData,
    hooks: JobHooks<ProfileDatasetProgress>,
  ): Promise<ProfileDatasetResult> {
    return profileDatasetJob(data, { ...this.deps, datasets: this.datasets.forTenant(hooks.meta.tenant) }, hooks);
  }

  /** A job that failed for good without marking its dataset (a worker fault) marks it failed here. */
  protected override afterFinalFailure(data: ProfileDatasetJobData, _jobId: string, meta: JobMeta): Promise<void> {
    return profileDatasetCleanup(data, this.datasets.forTenant(meta.tenant));
  }
}
