import type { RedisClient } from '../redis-connection';
import { quotaKeys } from './quota-keys';

/**
 * Members admitted this recently are never pruned: their job may not be in BullMQ yet (the API
 * admits before it adds).
 */
const PRUNE_GRACE_MS = 60_000;

/**
 * Prunes the members admitted before ARGV[2] whose job hash (ARGV[1] .. member) is gone or
 * finished: a worker killed between finishing a job and releasing it, an API that died between
 * admitting and adding, a job removed by retention. Returns what is left.
 */
const PRUNE = `
local function prune(set, keyPrefix, before)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', before)) do
    local job = keyPrefix .. m
    if redis.call('EXISTS', job) == 0 or redis.call('HEXISTS', job, 'finishedOn') == 1 then
      redis.call('ZREM', set, m)
    end
  end
  return redis.call('ZCARD', set)
end
`;

/**
 * Admits a job: -1 when it is counted now (or was already: a repeated Idempotency-Key), else the
 * tenant's count, at or over the limit. Count and add are one script, so two submissions racing
 * for the last slot cannot both get it. At the limit, stale members are pruned first.
 */
const ADMIT = `${PRUNE}
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return -1 end
local limit = tonumber(ARGV[5])
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then n = prune(KEYS[1], ARGV[1], ARGV[2]) end
if n >= limit then return n end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
return -1`;

const COUNT = `${PRUNE}
return prune(KEYS[1], ARGV[1], ARGV[2])`;

/** The tenant's jobs submitted and not finished, counted at submission (TENANT_MAX_QUEUED_JOBS). */
export class QueuedJobs {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** Counts `member` for `tenant`: undefined when admitted, else the count that refused it. */
  async admit(tenant: string, member: string, limit: number): Promise<number | undefined> {
    const now = Date.now();
    const n = Number(
      await this.redis.eval(
        ADMIT,
        1,
        quotaKeys(this.prefix, tenant).queued,
        `${this.prefix}:`,
        now - PRUNE_GRACE_MS,
        member,
        now,
        limit,
      ),
    );
    return n < 0 ? undefined : n;
  }

  /** The job finished, was cancelled, or was never added. */
  async release(tenant: string, member: string): Promise<void> {
    await this.redis.zrem(quotaKeys(this.prefix, tenant).queued, member);
  }

  /** The count, after pruning what finished without being released. */
  async count(tenant: string): Promise<number> {
    const key = quotaKeys(this.prefix, tenant).queued;
    return Number(await this.redis.eval(COUNT, 1, key, `${this.prefix}:`, Date.now() - PRUNE_GRACE_MS));
  }
}
