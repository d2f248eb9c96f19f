import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type InferJobData,
  type InferProgress,
  type InferResult,
  type JobHooks,
} from '@tq/contracts';
import { loadConfig, tableLimits } from '@tq/config';
import { inferCleanup, inferJob, type InferDeps } from '@tq/jobs';
import { InferenceEngine, type BackendInfo } from '@tq/ml';
import { CancelWatcher, HandlesJob, TypedWorkerHost } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';

@Processor(QueueName.Infer, workerOptions(JobName.Infer))
@HandlesJob(JobName.Infer)
export class InferProcessor extends TypedWorkerHost<JobName.Infer> {
  protected readonly jobName = JobName.Infer;
  private readonly deps: InferDeps;

  constructor(
    protected readonly cancels: CancelWatcher,
    engine: InferenceEngine,
    registry: ModelRegistry,
    datasets: DatasetStore,
    inputs: JobInputStore,
    store: ArtifactStore,
    @InjectBackend() backend: BackendInfo,
  ) {
    super();
    this.deps = { engine, registry, datasets, inputs, store, backend, tableLimits: tableLimits(loadConfig()) };
  }

  protected handle(data: InferJobData, hooks: JobHooks<InferProgress>): Promise<InferResult> {
    return inferJob(data, this.deps, hooks);
  }

  /** A job that failed for good (or was cancelled) no longer needs its stored inline rows. */
  protected override afterFinalFailure(data: InferJobData, jobId: string): Promise<void> {
    return inferCleanup(data, jobId, this.deps.inputs);
  }
}
