import { Processor } from '@nestjs/bullmq';
import { JobName, QueueName, type InferJobData, type InferResult } from '@tq/contracts';
import { InferenceEngine, type BackendInfo } from '@tq/ml';
import { HandlesJob, RedisClientHolder, TypedWorkerHost, jobHooks, type TypedJob } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { runInference } from '../runners/infer.runner';
import { workerOptions } from '../worker-options';

@Processor(QueueName.Infer, workerOptions())
@HandlesJob(JobName.Infer)
export class InferProcessor extends TypedWorkerHost<JobName.Infer> {
  protected readonly jobName = JobName.Infer;

  constructor(
    private readonly engine: InferenceEngine, private readonly registry: ModelRegistry, private readonly datasets: DatasetStore,
    private readonly store: ArtifactStore, private readonly redis: RedisClientHolder, @InjectBackend() private readonly backend: BackendInfo,
  ) {
    super();
  }

  protected handle(job: TypedJob<JobName.Infer>, data: InferJobData): Promise<InferResult> {
    return runInference(data, { engine: this.engine, registry: this.registry, datasets: this.datasets, store: this.store, backend: this.backend }, jobHooks(job, this.redis));
  }
}
