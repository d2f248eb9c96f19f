import type { RedisClient } from '../redis-connection';
import { fairShareKey } from './quota-keys';

/** BullMQ's largest priority (Job's PRIORITY_LIMIT): 2^21 - 1. */
export const MAX_PRIORITY = 2 ** 21 - 1;

/**
 * The priority of a tenant's new job in a queue, so that workers take tenants in turn. BullMQ runs
 * the lowest priority first, first in first out within one; its prioritized set scores a job
 * priority * 2^32 + a counter. A job's priority is the round it belongs to: the later of the
 * tenant's last round + 1 and the round the queue serves now (its lowest waiting priority). A
 * tenant with 500 waiting jobs holds rounds 1..500; another tenant's first job joins round 1 and
 * runs after at most one job of each tenant ahead of it, where FIFO would run it 501st. Within a
 * tenant, jobs keep their order. The rounds restart at 1 whenever the queue has nothing waiting,
 * so they stay small; a tenant that keeps over 2M jobs waiting shares the last round (FIFO there).
 */
const PRIORITY = `
local lowest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local serving = 1
if #lowest == 0 then
  redis.call('DEL', KEYS[1])
else
  serving = math.floor(tonumber(lowest[2]) / 4294967296)
end
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local p = math.max(last + 1, serving)
if p > tonumber(ARGV[2]) then p = tonumber(ARGV[2]) end
redis.call('HSET', KEYS[1], ARGV[1], p)
return p`;

/** The BullMQ priority of `tenant`'s next job in `queue` (one script: concurrent submissions get distinct rounds). */
export async function fairSharePriority(
  redis: RedisClient,
  prefix: string,
  queue: string,
  tenant: string,
): Promise<number> {
  const keys = [fairShareKey(prefix, queue), `${prefix}:${queue}:prioritized`];
  return Number(await redis.eval(PRIORITY, keys.length, ...keys, tenant, MAX_PRIORITY));
}
