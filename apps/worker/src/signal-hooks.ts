import { Logger } from '@nestjs/common';
import type { Worker } from 'bullmq';
import { CancelledError, type JobHooks, type JobName, type JobProgressOf } from '@tq/contracts';
import { jobHooks, type RedisClientHolder, type TypedJob } from '@tq/queue';

const logger = new Logger('jobs');

/** This process lost the job's lock (it stalled past lockDuration): BullMQ has handed the job on. */
export class JobLockLostError extends Error {
  constructor(jobId: string) {
    super(`lost the lock of job ${jobId} (the process stalled past lockDuration); another attempt has it`);
    this.name = 'JobLockLostError';
  }
}

/**
 * Stop-gap until libs/queue hands job bodies the contracts' JobHooks. The signal aborts with a
 * CancelledError when the job's cancel flag is seen (polled every `everyMs`), with a
 * JobLockLostError when `worker` could not renew the job's lock: the body stops instead of
 * running on beside the attempt BullMQ started elsewhere. Call `dispose` when the job ends.
 */
export function signalHooks<N extends JobName>(
  job: TypedJob<N>, redis: RedisClientHolder, worker: Worker, everyMs = 500,
): JobHooks<JobProgressOf<N>> & { dispose(): void } {
  const { jobId, onProgress, shouldStop } = jobHooks(job, redis);
  const controller = new AbortController();
  const timer = setInterval(() => {
    shouldStop().catch((err: unknown) => { if (err instanceof CancelledError) controller.abort(err); });
  }, everyMs);
  timer.unref();
  const onLockLost = (ids: string[]): void => { if (ids.includes(jobId)) controller.abort(new JobLockLostError(jobId)); };
  worker.on('lockRenewalFailed', onLockLost);
  return {
    jobId, onProgress, signal: controller.signal,
    log: (line) => { logger.log(`${job.name} ${jobId}: ${line}`); void job.log(line).catch(() => undefined); },
    dispose: () => { clearInterval(timer); worker.off('lockRenewalFailed', onLockLost); },
  };
}
