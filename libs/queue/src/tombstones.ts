import type { RedisClient } from './redis-connection';
import { QUEUE_OF_JOB, jobViewSchema, type JobView, type PublicJobType } from '@tq/contracts';
import { forgetFinished, recordFinished } from './retention-index';

/**
 * A cancelled job leaves BullMQ (so the dashboard's "failed" list holds real failures only) and a
 * tombstone: its last view, answered by GET /v1/jobs/:id for as long as finished jobs are kept.
 * An index per job type (sorted by creation time) lets GET /v1/jobs list them beside BullMQ's jobs.
 */
const tombstoneKey = (prefix: string, jobId: string) => `${prefix}:tq-cancelled:${jobId}`;
const indexKey = (prefix: string, type: PublicJobType) => `${prefix}:tq-cancelled-index:${type}`;

export async function writeTombstone(
  redis: RedisClient,
  prefix: string,
  view: JobView,
  ttlSeconds: number,
): Promise<void> {
  const index = indexKey(prefix, view.type);
  const json = JSON.stringify(view);
  // Entries older than the tombstones themselves can live are dropped on every write: bounded.
  await redis
    .multi()
    .set(tombstoneKey(prefix, view.id), json, 'EX', ttlSeconds)
    .zadd(index, Date.parse(view.createdAt), view.id)
    .zremrangebyscore(index, '-inf', `(${Date.now() - ttlSeconds * 1000}`)
    .expire(index, ttlSeconds)
    .exec()
    .then(failedCommand);
  // Retention counts it among the finished jobs (and removes it with its files); ~100 bytes of key overhead.
  await recordFinished(redis, prefix, QUEUE_OF_JOB[view.type], [
    { id: view.id, finishedAt: Date.now(), bytes: json.length + 100 },
  ]);
}

export async function readTombstone(redis: RedisClient, prefix: string, jobId: string): Promise<JobView | undefined> {
  const raw = await redis.get(tombstoneKey(prefix, jobId));
  return raw ? jobViewSchema.parse(JSON.parse(raw)) : undefined;
}

/** Undoes writeTombstone: a job a worker took before it could be removed is not cancelled after all. */
export async function deleteTombstone(
  redis: RedisClient,
  prefix: string,
  view: Pick<JobView, 'id' | 'type'>,
): Promise<void> {
  await redis
    .multi()
    .del(tombstoneKey(prefix, view.id))
    .zrem(indexKey(prefix, view.type), view.id)
    .exec()
    .then(failedCommand);
}

/**
 * Undoes a cancel that did not happen after all (a worker took the job first, or the cancel timed
 * out): the tombstone goes, and so does its retention entry, so the job is recorded with its real
 * finish time when it ends instead of ageing out from the cancel's.
 */
export async function undoTombstone(
  redis: RedisClient,
  prefix: string,
  view: Pick<JobView, 'id' | 'type'>,
): Promise<void> {
  await deleteTombstone(redis, prefix, view);
  await forgetFinished(redis, prefix, QUEUE_OF_JOB[view.type], [view.id]);
}

/**
 * The `count` newest tombstones of a type (by creation time) from the `start`-th, newest first;
 * expired ones are skipped.
 */
export async function listTombstones(
  redis: RedisClient,
  prefix: string,
  type: PublicJobType,
  count: number,
  start = 0,
): Promise<JobView[]> {
  const ids = await redis.zrevrange(indexKey(prefix, type), start, start + count - 1);
  if (ids.length === 0) return [];
  const raws = await redis.mget(ids.map((id) => tombstoneKey(prefix, id)));
  return raws.flatMap((raw) => (raw ? [jobViewSchema.parse(JSON.parse(raw))] : []));
}

/** MULTI/EXEC reports a failed command in its results instead of rejecting. */
function failedCommand(results: [Error | null, unknown][] | null): void {
  const err = results?.find(([e]) => e)?.[0];
  if (err) throw err;
}
