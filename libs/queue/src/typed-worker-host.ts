import { WorkerHost } from '@nestjs/bullmq';
import { UnrecoverableError, type Job } from 'bullmq';
import { JOB_DATA_SCHEMAS, TqError, describeIssues, type JobDataOf, type JobName, type JobResultOf } from '@tq/contracts';

export type TypedJob<N extends JobName> = Job<JobDataOf<N>, JobResultOf<N>, N>;

/**
 * Base of every processor: checks the job name, re-validates the payload (a bad one fails at once
 * as UnrecoverableError, no retries), and sorts errors by their base class: a TqError that is not
 * retryable (bad input, not found, cancelled) is unrecoverable, everything else is rethrown so
 * BullMQ retries it. Nothing is swallowed.
 */
export abstract class TypedWorkerHost<N extends JobName> extends WorkerHost {
  protected abstract readonly jobName: N;

  async process(job: Job): Promise<JobResultOf<N>> {
    if (job.name !== this.jobName) throw new UnrecoverableError(`this queue's processor handles "${this.jobName}", not "${job.name}"`);
    const parsed = JOB_DATA_SCHEMAS[this.jobName].safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid payload: ${describeIssues(parsed.error)}`);
    try {
      return await this.handle(job as TypedJob<N>, parsed.data as JobDataOf<N>);
    } catch (err) {
      if (err instanceof TqError && !err.retryable) throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  protected abstract handle(job: TypedJob<N>, data: JobDataOf<N>): Promise<JobResultOf<N>>;
}
