import type Redis from 'ioredis';

/** Cancellation crosses processes through one small key per job, set by the API, read by workers. */
export const cancelKey = (prefix: string, jobId: string) => `${prefix}:tq-cancel:${jobId}`;
const CANCEL_TTL_SECONDS = 7 * 24 * 3600;

export async function requestCancel(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.set(cancelKey(prefix, jobId), '1', 'EX', CANCEL_TTL_SECONDS);
}
