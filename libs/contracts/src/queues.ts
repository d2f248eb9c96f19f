/** Every queue the system uses. A worker serves a subset (WORKER_QUEUES); the API produces to all. */
export enum QueueName {
  Train = 'train',
  Compress = 'compress',
  Infer = 'infer',
  /** Data-parallel runs: one aggregator job per run (parameter server). */
  Aggregate = 'aggregate',
  /** Data-parallel runs: one shard job per participating worker. */
  TrainShard = 'train-shard',
  /** Sharded batch inference: one job per row range of a table, spawned by its infer job. */
  InferShard = 'infer-shard',
  /** Uploaded tables: one profiling job per upload (read once with bounded memory, profile, mark ready). */
  Datasets = 'datasets',
}

/** Every job kind; JOB_REGISTRY (job-registry.ts) says what each carries and where. */
export enum JobName {
  Train = 'train',
  Compress = 'compress',
  Infer = 'infer',
  Aggregate = 'aggregate',
  TrainShard = 'train-shard',
  InferShard = 'infer-shard',
  ProfileDataset = 'profile-dataset',
}
