import type { JobsOptions } from 'bullmq';
import { JobName } from './queues';

/**
 * Defaults per job. Training retries (a killed worker's job resumes from its checkpoint);
 * completed jobs are kept so GET /v1/jobs/:id keeps answering after the fact.
 */
export const DEFAULT_JOB_OPTIONS: Readonly<Record<JobName, JobsOptions>> = {
  [JobName.Train]: { attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 } },
  [JobName.Compress]: { attempts: 2, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 } },
  [JobName.Infer]: { attempts: 2, backoff: { type: 'fixed', delay: 1000 }, removeOnComplete: { count: 10_000 }, removeOnFail: { count: 10_000 } },
  [JobName.Aggregate]: { attempts: 5, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
  [JobName.TrainShard]: { attempts: 5, backoff: { type: 'fixed', delay: 500 }, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } },
};

