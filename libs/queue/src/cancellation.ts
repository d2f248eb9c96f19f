import type { RedisClient } from './redis-connection';

/** Cancellation crosses processes through one small key per job, set by the API, read by workers. */
export const cancelKey = (prefix: string, jobId: string) => `${prefix}:tq-cancel:${jobId}`;

/** `ttlSeconds`: as long as the job's record is kept (JOB_HISTORY_AGE_SECONDS), a flag outlives no job. */
export async function requestCancel(
  redis: RedisClient,
  prefix: string,
  jobId: string,
  ttlSeconds: number,
): Promise<void> {
  await redis.set(cancelKey(prefix, jobId), '1', 'EX', ttlSeconds);
}
