import { Processor } from '@nestjs/bullmq';
import {
  JobName,
  QueueName,
  type InferShardJobData,
  type InferShardProgress,
  type InferShardResult,
  type JobHooks,
} from '@tq/contracts';
import { loadConfig, tableLimits } from '@tq/config';
import { inferShardJob, type InferShardDeps } from '@tq/jobs';
import { InferenceEngine } from '@tq/ml';
import { CancelWatcher, HandlesJob, TypedWorkerHost } from '@tq/queue';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { workerOptions } from '../worker-options';
import { storesFor } from './tenant-deps';

/** One shard of a table's infer job (libs/jobs infer-shard.job.ts); served wherever the infer queue is. */
@Processor(QueueName.InferShard, workerOptions(JobName.InferShard))
@HandlesJob(JobName.InferShard)
export class InferShardProcessor extends TypedWorkerHost<JobName.InferShard> {
  protected readonly jobName = JobName.InferShard;
  private readonly deps: InferShardDeps;
  private readonly stores: {
    engine: InferenceEngine;
    registry: ModelRegistry;
    datasets: DatasetStore;
    store: ArtifactStore;
  };

  constructor(
    protected readonly cancels: CancelWatcher,
    engine: InferenceEngine,
    registry: ModelRegistry,
    datasets: DatasetStore,
    store: ArtifactStore,
  ) {
    super();
    this.stores = { engine, registry, datasets, store };
    this.deps = { engine, registry, datasets, store, tableLimits: tableLimits(loadConfig()) };
  }

  protected handle(data: InferShardJobData, hooks: JobHooks<InferShardProgress>): Promise<InferShardResult> {
    return inferShardJob(data, { ...this.deps, ...storesFor(this.stores, hooks.meta.tenant) }, hooks);
  }
}
