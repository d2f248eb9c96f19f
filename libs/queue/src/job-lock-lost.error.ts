/**
 * This process could not renew a job's lock (it stalled past lockDuration, or Redis was away):
 * BullMQ hands the job to another attempt, so this one stops. Not a cancel: the job goes on there.
 */
export class JobLockLostError extends Error {
  constructor(jobId: string) {
    super(`lost the lock of job ${jobId} (this process stalled past lockDuration); another attempt has it`);
    this.name = 'JobLockLostError';
  }
}
