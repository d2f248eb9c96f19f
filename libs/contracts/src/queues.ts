/** Every queue the system uses. A worker serves a subset (WORKER_QUEUES); the API produces to all. */
export enum QueueName {
  Train = 'train',
  Compress = 'compress',
  Infer = 'infer',
  /** Data-parallel runs: one aggregator job per run (parameter server). */
  Aggregate = 'aggregate',
  /** Data-parallel runs: one shard job per participating worker. */
  TrainShard = 'train-shard',
}

export enum JobName {
  Train = 'train',
  Compress = 'compress',
  Infer = 'infer',
  Aggregate = 'aggregate',
  TrainShard = 'train-shard',
}

/** Which queue carries each job. One job name lives on exactly one queue. */
export const QUEUE_OF_JOB: Readonly<Record<JobName, QueueName>> = {
  [JobName.Train]: QueueName.Train,
  [JobName.Compress]: QueueName.Compress,
  [JobName.Infer]: QueueName.Infer,
  [JobName.Aggregate]: QueueName.Aggregate,
  [JobName.TrainShard]: QueueName.TrainShard,
};

/** Job types a user submits over REST (the others are spawned internally). */
export const PUBLIC_JOB_TYPES = [JobName.Train, JobName.Compress, JobName.Infer] as const;
export type PublicJobType = (typeof PUBLIC_JOB_TYPES)[number];

export const ALL_QUEUES: readonly QueueName[] = Object.values(QueueName);
