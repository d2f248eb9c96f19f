import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type CompressJobData,
  type CompressProgress,
  type CompressResult,
  type JobHooks,
} from '@tq/contracts';
import { loadConfig, tableLimits } from '@tq/config';
import { compressJob, type CompressDeps } from '@tq/jobs';
import type { BackendInfo } from '@tq/ml';
import { CancelWatcher, HandlesJob, TypedWorkerHost } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';

@Processor(QueueName.Compress, workerOptions(JobName.Compress))
@HandlesJob(JobName.Compress)
export class CompressProcessor extends TypedWorkerHost<JobName.Compress> {
  protected readonly jobName = JobName.Compress;
  private readonly deps: CompressDeps;
  private readonly stores: { registry: ModelRegistry; datasets: DatasetStore; store: ArtifactStore };

  constructor(
    protected readonly cancels: CancelWatcher,
    registry: ModelRegistry,
    datasets: DatasetStore,
    store: ArtifactStore,
    @InjectBackend() backend: BackendInfo,
  ) {
    super();
    this.stores = { registry, datasets, store };
    // The store: fine-tuning and distillation checkpoint every epoch, so a retried job resumes them.
    this.deps = { registry, datasets, store, backend, tableLimits: tableLimits(loadConfig()) };
  }

  protected handle(data: CompressJobData, hooks: JobHooks<CompressProgress>): Promise<CompressResult> {
    return compressJob(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }
}
