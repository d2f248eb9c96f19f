import type { JobName, JobProgressOf } from '@tq/contracts';
import { JobCancelledError, cancellationProbe } from './cancellation';
import type { RedisClientHolder } from './redis.provider';
import type { TypedJob } from './typed-worker-host';

/** What a long-running job body gets from its processor: who it is, where progress goes, when to stop. */
export interface JobHooks<P> {
  jobId: string;
  onProgress: (progress: P) => Promise<void>;
  /** Resolves false while the job may go on; throws JobCancelledError once a cancel was requested. */
  shouldStop: () => Promise<boolean>;
}

/**
 * Hooks for a processor's job: progress goes to BullMQ, cancellation is read from Redis between
 * batches. Throwing (rather than returning true) makes any loop end the job as cancelled, without retries.
 */
export function jobHooks<N extends JobName>(job: TypedJob<N>, redis: RedisClientHolder): JobHooks<JobProgressOf<N>> {
  const jobId = job.id ?? '';
  const cancelled = cancellationProbe(redis.client, redis.prefix, jobId);
  return {
    jobId,
    onProgress: (progress) => job.updateProgress(progress as object),
    shouldStop: async () => {
      if (await cancelled()) throw new JobCancelledError();
      return false;
    },
  };
}
