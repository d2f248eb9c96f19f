import type Redis from 'ioredis';
import { CANCELLED_REASON, CancelledError } from '@tq/contracts';

/** Cancellation crosses processes through one small key per job; a processor polls it between batches. */
const cancelKey = (prefix: string, jobId: string) => `${prefix}:tq-cancel:${jobId}`;
const CANCEL_TTL_SECONDS = 7 * 24 * 3600;
export { CANCELLED_REASON };

export async function requestCancel(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.set(cancelKey(prefix, jobId), '1', 'EX', CANCEL_TTL_SECONDS);
}

export async function isCancelRequested(redis: Redis, prefix: string, jobId: string): Promise<boolean> {
  return (await redis.exists(cancelKey(prefix, jobId))) === 1;
}

/** A shouldStop() for compute loops: asks Redis at most every `everyMs`, in between answers from memory. */
export function cancellationProbe(redis: Redis, prefix: string, jobId: string, everyMs = 300): () => Promise<boolean> {
  let last = 0;
  let cancelled = false;
  return async () => {
    const now = Date.now();
    if (!cancelled && now - last >= everyMs) {
      last = now;
      cancelled = await isCancelRequested(redis, prefix, jobId);
    }
    return cancelled;
  };
}

/** Thrown by a processor that saw its cancel flag; the job fails at once, without retries. */
export class JobCancelledError extends CancelledError {}
