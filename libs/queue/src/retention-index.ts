import type { RedisClient } from './redis-connection';
import type { QueueName } from '@tq/contracts';

/**
 * The retention index: the public jobs that have finished for good (completed, failed after their
 * last attempt, cancelled), per queue, sorted by finish time, each with its byte size, and the
 * total of those sizes. The retention sweeper fills it from BullMQ's finished sets and removes the
 * oldest entries (job, files, tombstone) while a bound is exceeded; writeTombstone adds cancelled
 * jobs, which leave BullMQ. The keys share one hash tag, so the scripts below stay in one slot.
 */
export interface RetentionKeys {
  /** Sorted set: job id → finish time (ms). */
  index: string;
  /** Hash: job id → bytes (Redis payload and result, its files). */
  sizes: string;
  /** Sum of every queue's sizes. */
  total: string;
}

export function retentionKeys(prefix: string, queue: QueueName | string): RetentionKeys {
  const base = `${prefix}:{tq-retention}`;
  return { index: `${base}:index:${queue}`, sizes: `${base}:bytes:${queue}`, total: `${base}:total` };
}

/** Adds an entry unless there is one (so recording twice counts the bytes once); 1 if added. */
const RECORD = `
if redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('INCRBY', KEYS[3], ARGV[3])
  return 1
end
return 0`;

/** Drops an entry and its bytes from the total; 1 if this call dropped it (a second caller gets 0). */
const FORGET = `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  local bytes = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('DECRBY', KEYS[3], bytes)
  return 1
end
return 0`;

export interface FinishedJob {
  id: string;
  finishedAt: number;
  bytes: number;
}

/** Records finished jobs of one queue (one round trip); how many were new. */
export async function recordFinished(
  redis: RedisClient,
  prefix: string,
  queue: QueueName | string,
  jobs: readonly FinishedJob[],
): Promise<number> {
  if (jobs.length === 0) return 0;
  const k = retentionKeys(prefix, queue);
  const pipe = redis.pipeline();
  for (const j of jobs)
    pipe.eval(RECORD, 3, k.index, k.sizes, k.total, j.finishedAt, j.id, Math.max(0, Math.round(j.bytes)));
  return sumResults(await pipe.exec());
}

/** Forgets entries of one queue; the ids this call forgot (an entry already gone is not among them). */
export async function forgetFinished(
  redis: RedisClient,
  prefix: string,
  queue: QueueName | string,
  ids: readonly string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const k = retentionKeys(prefix, queue);
  const pipe = redis.pipeline();
  for (const id of ids) pipe.eval(FORGET, 3, k.index, k.sizes, k.total, id);
  const results = (await pipe.exec()) ?? [];
  return ids.filter((_, i) => {
    const [err, value] = results[i] ?? [null, 0];
    if (err) throw err;
    return Number(value) === 1;
  });
}

/** Bytes recorded in all queues' entries. */
export async function retainedBytes(redis: RedisClient, prefix: string): Promise<number> {
  return Number((await redis.get(retentionKeys(prefix, '').total)) ?? 0);
}

function sumResults(results: [Error | null, unknown][] | null): number {
  let n = 0;
  for (const [err, value] of results ?? []) {
    if (err) throw err;
    n += Number(value);
  }
  return n;
}
