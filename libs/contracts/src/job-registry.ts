import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';
import {
  profileDatasetJobDataSchema,
  profileDatasetProgressSchema,
  profileDatasetResultSchema,
} from './dataset.schema';
import { compressProgressSchema, compressRequestSchema, compressResultSchema } from './compress.schema';
import {
  aggregateJobDataSchema,
  aggregateResultSchema,
  distributedProgressSchema,
  trainShardJobDataSchema,
  trainShardResultSchema,
} from './distributed.schema';
import {
  inferJobDataSchema,
  inferProgressSchema,
  inferResultSchema,
  inferShardJobDataSchema,
  inferShardProgressSchema,
  inferShardResultSchema,
} from './infer.schema';
import { FieldError } from './errors';
import { jobEnvelopeSchema, type JobEnvelope, type JobMeta } from './job-envelope';
import { JobName, QueueName } from './queues';
import { trainProgressSchema, trainRequestSchema, trainResultSchema } from './train.schema';
import { toFieldIssues } from './validation';

/** One job kind: the queue that carries it, the schemas of its payload, progress and result. */
export interface JobDefinition {
  queue: QueueName;
  /** Submitted over REST (the others are spawned by jobs). */
  public: boolean;
  data: z.ZodType;
  progress: z.ZodType;
  result: z.ZodType;
  /** Attempts and backoff; retention comes from configuration (JOB_HISTORY_*). */
  options: Pick<JobsOptions, 'attempts' | 'backoff'>;
}

/**
 * THE job registry: every map, list and type about jobs derives from it (queues, public types,
 * schemas, the JobMap type). Adding a job kind is one entry here plus one handler in the worker,
 * which the worker's start-up check demands.
 */
export const JOB_REGISTRY = {
  [JobName.Train]: {
    queue: QueueName.Train,
    public: true,
    data: trainRequestSchema,
    progress: trainProgressSchema,
    result: trainResultSchema,
    // A killed worker's job resumes from its checkpoint.
    options: { attempts: 3, backoff: { type: 'exponential', delay: 1000 } },
  },
  [JobName.Compress]: {
    queue: QueueName.Compress,
    public: true,
    data: compressRequestSchema,
    progress: compressProgressSchema,
    result: compressResultSchema,
    options: { attempts: 2, backoff: { type: 'fixed', delay: 1000 } },
  },
  [JobName.Infer]: {
    queue: QueueName.Infer,
    public: true,
    data: inferJobDataSchema,
    progress: inferProgressSchema,
    result: inferResultSchema,
    options: { attempts: 2, backoff: { type: 'fixed', delay: 1000 } },
  },
  [JobName.Aggregate]: {
    queue: QueueName.Aggregate,
    public: false,
    data: aggregateJobDataSchema,
    progress: distributedProgressSchema,
    result: aggregateResultSchema,
    options: { attempts: 5, backoff: { type: 'fixed', delay: 500 } },
  },
  [JobName.TrainShard]: {
    queue: QueueName.TrainShard,
    public: false,
    data: trainShardJobDataSchema,
    progress: distributedProgressSchema,
    result: trainShardResultSchema,
    options: { attempts: 5, backoff: { type: 'fixed', delay: 500 } },
  },
  // A killed worker costs its shard: another takes it over and computes its rows again.
  [JobName.InferShard]: {
    queue: QueueName.InferShard,
    public: false,
    data: inferShardJobDataSchema,
    progress: inferShardProgressSchema,
    result: inferShardResultSchema,
    options: { attempts: 3, backoff: { type: 'fixed', delay: 500 } },
  },
  // Public: POST /v1/datasets submits it, and GET /v1/jobs/:id (the dataset's jobId) shows its progress.
  [JobName.ProfileDataset]: {
    queue: QueueName.Datasets,
    public: true,
    data: profileDatasetJobDataSchema,
    progress: profileDatasetProgressSchema,
    result: profileDatasetResultSchema,
    // Reading a file again gives the same answer: a retry helps only a crashed worker.
    options: { attempts: 2, backoff: { type: 'fixed', delay: 1000 } },
  },
} as const satisfies { [N in JobName]: JobDefinition };

type Registry = typeof JOB_REGISTRY;
/** The type map from job name to its payload, result and progress, derived from the registry. */
export type JobMap = {
  [N in JobName]: {
    data: z.output<Registry[N]['data']>;
    progress: z.output<Registry[N]['progress']>;
    result: z.output<Registry[N]['result']>;
  };
};
export type JobDataOf<N extends JobName> = JobMap[N]['data'];
export type JobResultOf<N extends JobName> = JobMap[N]['result'];
export type JobProgressOf<N extends JobName> = JobMap[N]['progress'];

export type PublicJobType = { [N in JobName]: Registry[N]['public'] extends true ? N : never }[JobName];
export const ALL_JOBS: readonly JobName[] = Object.values(JobName);
export const PUBLIC_JOB_TYPES = ALL_JOBS.filter(
  (n): n is PublicJobType => JOB_REGISTRY[n].public,
) as readonly PublicJobType[];
export const QUEUE_OF_JOB = Object.fromEntries(ALL_JOBS.map((n) => [n, JOB_REGISTRY[n].queue])) as Readonly<
  Record<JobName, QueueName>
>;
export const ALL_QUEUES: readonly QueueName[] = [...new Set(ALL_JOBS.map((n) => JOB_REGISTRY[n].queue))];

/**
 * Queues served by every worker of another queue, never configured on their own: a table's infer
 * job runs its shards on the workers that run infer jobs (so a fleet that runs infer runs shards).
 */
export const SERVED_WITH: Readonly<Partial<Record<QueueName, QueueName>>> = {
  [QueueName.InferShard]: QueueName.Infer,
};

/** The queues a worker configured with `configured` (WORKER_QUEUES) serves: those, and those served with them. */
export function servedQueues(configured: readonly QueueName[]): QueueName[] {
  const riders = ALL_QUEUES.filter((q) => {
    const host = SERVED_WITH[q];
    return host !== undefined && configured.includes(host) && !configured.includes(q);
  });
  return [...configured, ...riders];
}

/** Queues that get workers of their own in a deployment (one Deployment each): all but those served with another. */
export const DEPLOYED_QUEUES: readonly QueueName[] = ALL_QUEUES.filter((q) => SERVED_WITH[q] === undefined);

/** Schema accessors typed per job name (the registry's `as const` keeps each schema's own type). */
export const dataSchemaOf = <N extends JobName>(name: N) =>
  JOB_REGISTRY[name].data as unknown as z.ZodType<JobDataOf<N>>;
export const progressSchemaOf = <N extends JobName>(name: N) =>
  JOB_REGISTRY[name].progress as unknown as z.ZodType<JobProgressOf<N>>;
export const resultSchemaOf = <N extends JobName>(name: N) =>
  JOB_REGISTRY[name].result as unknown as z.ZodType<JobResultOf<N>>;

/**
 * The payload a queue stores for a job: meta + the request validated against the job's schema
 * (defaults filled in, so a worker never guesses). Bad input throws FieldError naming each field,
 * before anything is enqueued.
 */
export function buildEnvelope<N extends JobName>(name: N, request: unknown, meta: JobMeta): JobEnvelope<JobDataOf<N>> {
  const parsed = dataSchemaOf(name).safeParse(request);
  if (!parsed.success) throw new FieldError(toFieldIssues(parsed.error));
  return { meta, request: parsed.data };
}

/** Reads a stored envelope back (the worker's edge): the schema of the job's payload, and the meta. */
export function envelopeSchemaOf<N extends JobName>(name: N) {
  return jobEnvelopeSchema(dataSchemaOf(name)) as unknown as z.ZodType<JobEnvelope<JobDataOf<N>>>;
}

/** How long a finished job's record stays: by count AND by age, so Redis holds a bounded history. */
export interface JobRetention {
  count: number;
  ageSeconds: number;
}
export const DEFAULT_RETENTION: JobRetention = { count: 1000, ageSeconds: 7 * 24 * 3600 };

/**
 * A job's BullMQ options: attempts and backoff from the registry, retention from configuration.
 * Public jobs are retired by the retention sweeper (apps/worker retention), with their files and
 * within a byte bound; BullMQ's own trimming would drop them behind its back and leave their files,
 * so for them it is only a far backstop: twice the age (fires only if no sweep ran for a whole age)
 * and ten times the count (only if more than nine counts' worth finish between two sweeps). What it
 * drops, the orphan sweep cleans after. Child jobs (aggregator, shards) hold no files of their own
 * (a run's checkpoint is its train job's): BullMQ's count and age bound them, and the sweeper
 * removes a run's children with its train job.
 */
export function jobOptionsOf(name: JobName, retention: JobRetention = DEFAULT_RETENTION): JobsOptions {
  const keep = JOB_REGISTRY[name].public
    ? { count: retention.count * 10, age: retention.ageSeconds * 2 }
    : { count: retention.count, age: retention.ageSeconds };
  return { ...JOB_REGISTRY[name].options, removeOnComplete: keep, removeOnFail: keep };
}
