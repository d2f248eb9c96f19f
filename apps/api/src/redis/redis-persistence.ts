import type Redis from 'ioredis';
import type { RedisPersistence } from '@tq/contracts';
import { redisMasters, type RedisClient } from '@tq/queue';

/** Weakest first: a cluster keeps its data only as well as its weakest master. */
const STRENGTH: readonly RedisPersistence[] = ['none', 'unknown', 'rdb', 'aof', 'aof+rdb'];

/** The persistence of one Redis, or of the weakest master of a cluster (each holds its own keys). */
export async function readPersistence(client: RedisClient): Promise<RedisPersistence> {
  const each = await Promise.all(redisMasters(client).map(readNodePersistence));
  return each.reduce((a, b) => (STRENGTH.indexOf(b) < STRENGTH.indexOf(a) ? b : a), 'aof+rdb');
}

/**
 * Whether Redis keeps its data across a restart: `INFO persistence` says whether the append-only
 * file is on; `CONFIG GET save` whether snapshots are scheduled. CONFIG is often disabled on
 * managed Redis (renamed away): then only a known AOF is reported, anything else is "unknown".
 */
async function readNodePersistence(client: Redis): Promise<RedisPersistence> {
  const info = await client.info('persistence');
  const aof = /^aof_enabled:1\s*$/m.test(info);
  const rdb = await client.config('GET', 'save').then(
    (reply: unknown) => Array.isArray(reply) && typeof reply[1] === 'string' && reply[1].trim() !== '',
    () => undefined,
  );
  if (rdb === undefined) return aof ? 'aof' : 'unknown';
  if (aof) return rdb ? 'aof+rdb' : 'aof';
  return rdb ? 'rdb' : 'none';
}

export const NO_PERSISTENCE_WARNING =
  'Redis keeps nothing on disk (appendonly no, save ""): a Redis restart loses every queued and finished job. ' +
  'Run it with --appendonly yes.';
