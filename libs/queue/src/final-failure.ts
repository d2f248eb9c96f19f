import { UnrecoverableError, type Job } from 'bullmq';

/** True when no retry follows this failure: it was unrecoverable, or the job has used its attempts. */
export function isFinalFailure(job: Job, err: Error): boolean {
  return err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
}
