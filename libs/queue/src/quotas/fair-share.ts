import type { RedisClient } from '../redis-connection';
import { fairShareKey } from './quota-keys';

/** BullMQ's largest priority (Job's PRIORITY_LIMIT): 2^21 - 1. */
export const MAX_PRIORITY = 2 ** 21 - 1;

/**
 * Rounds restart at 1 once the queue has had nothing waiting for this long since the last round
 * was given. Not at once: a burst of submissions gets its rounds before its jobs land in the queue
 * (two steps), and a reset between them would give several of one tenant's jobs round 1.
 */
const IDLE_RESET_MS = 5000;

/**
 * The priority of a tenant's new job in a queue, so that workers take tenants in turn. BullMQ runs
 * the lowest priority first, first in first out within one; its prioritized set scores a job
 * priority * 2^32 + a counter. A job's priority is the round it belongs to: the later of the
 * tenant's last round + 1 and the round the queue serves now (its lowest waiting priority). A
 * tenant with 500 waiting jobs holds rounds 1..500; another tenant's first job joins round 1 and
 * runs after at most one job of each tenant ahead of it, where FIFO would run it 501st. Within a
 * tenant, jobs keep their order. The rounds restart at 1 when the queue has stayed empty (so they
 * stay small); a tenant that keeps over 2M jobs waiting shares the last round (FIFO there).
 * The hash's "~at" field (no tenant name has a "~") is when a round was last given.
 */
const PRIORITY = `
local lowest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local now = tonumber(ARGV[3])
local serving = 1
if #lowest == 0 then
  if now - tonumber(redis.call('HGET', KEYS[1], '~at') or '0') > tonumber(ARGV[4]) then redis.call('DEL', KEYS[1]) end
else
  serving = math.floor(tonumber(lowest[2]) / 4294967296)
end
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local p = math.max(last + 1, serving)
if p > tonumber(ARGV[2]) then p = tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], ARGV[1], p, '~at', now)
return p`;

/** The BullMQ priority of `tenant`'s next job in `queue` (one script: concurrent submissions get distinct rounds). */
export async function fairSharePriority(
  redis: RedisClient,
  prefix: string,
  queue: string,
  tenant: string,
): Promise<number> {
  const keys = [fairShareKey(prefix, queue), `${prefix}:${queue}:prioritized`];
  return Number(await redis.eval(PRIORITY, keys.length, ...keys, tenant, MAX_PRIORITY, Date.now(), IDLE_RESET_MS));
}
