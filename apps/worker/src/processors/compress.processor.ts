import { Processor } from '@nestjs/bullmq';
import { JobName, QueueName, type CompressJobData, type CompressResult } from '@tq/contracts';
import type { BackendInfo } from '@tq/ml';
import { HandlesJob, RedisClientHolder, TypedWorkerHost, jobHooks, type TypedJob } from '@tq/queue';
import { InjectBackend } from '@tq/runtime';
import { DatasetStore, ModelRegistry } from '@tq/storage';
import { runCompression } from '../runners/compress.runner';
import { workerOptions } from '../worker-options';

@Processor(QueueName.Compress, workerOptions())
@HandlesJob(JobName.Compress)
export class CompressProcessor extends TypedWorkerHost<JobName.Compress> {
  protected readonly jobName = JobName.Compress;

  constructor(private readonly registry: ModelRegistry, private readonly datasets: DatasetStore, private readonly redis: RedisClientHolder, @InjectBackend() private readonly backend: BackendInfo) {
    super();
  }

  protected handle(job: TypedJob<JobName.Compress>, data: CompressJobData): Promise<CompressResult> {
    return runCompression(data, { registry: this.registry, datasets: this.datasets, backend: this.backend }, jobHooks(job, this.redis));
  }
}
