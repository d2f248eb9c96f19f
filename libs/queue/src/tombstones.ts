import type Redis from 'ioredis';
import { jobViewSchema, type JobView } from '@tq/contracts';

/**
 * A cancelled job leaves BullMQ (so the dashboard's "failed" list holds real failures only) and a
 * tombstone: its last view, answered by GET /v1/jobs/:id for as long as finished jobs are kept.
 */
const tombstoneKey = (prefix: string, jobId: string) => `${prefix}:tq-cancelled:${jobId}`;

export async function writeTombstone(redis: Redis, prefix: string, view: JobView, ttlSeconds: number): Promise<void> {
  await redis.set(tombstoneKey(prefix, view.id), JSON.stringify(view), 'EX', ttlSeconds);
}

export async function readTombstone(redis: Redis, prefix: string, jobId: string): Promise<JobView | undefined> {
  const raw = await redis.get(tombstoneKey(prefix, jobId));
  return raw ? jobViewSchema.parse(JSON.parse(raw)) : undefined;
}
