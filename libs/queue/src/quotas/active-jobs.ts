import type { RedisClient } from '../redis-connection';
import { quotaKeys } from './quota-keys';

/**
 * Takes a slot: expired leases go first (their worker died without releasing), then a job that
 * holds one (a new attempt of a job whose worker died) renews it, and another gets one while the
 * tenant is under its limit. -1 when the job holds a slot now, else the tenant's count.
 */
const TAKE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  return -1
end
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[4]) then return n end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
return -1`;

const COUNT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZCARD', KEYS[1])`;

/**
 * The tenant's jobs running on workers (TENANT_MAX_ACTIVE_JOBS): a sorted set of job members
 * scored by the end of their lease, which the running worker renews. A killed worker renews
 * nothing: its slot frees when the lease ends, so no crash leaks a slot for good.
 */
export class ActiveJobs {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  /** undefined when `member` holds a slot until now + leaseMs, else the count that refused it. */
  async take(tenant: string, member: string, limit: number, leaseMs: number): Promise<number | undefined> {
    const now = Date.now();
    const key = quotaKeys(this.prefix, tenant).active;
    const n = Number(await this.redis.eval(TAKE, 1, key, now, member, now + leaseMs, limit));
    return n < 0 ? undefined : n;
  }

  /** Extends a held lease; a lease already lost (pruned) is not taken again (XX). */
  async renew(tenant: string, member: string, leaseMs: number): Promise<void> {
    await this.redis.zadd(quotaKeys(this.prefix, tenant).active, 'XX', Date.now() + leaseMs, member);
  }

  async release(tenant: string, member: string): Promise<void> {
    await this.redis.zrem(quotaKeys(this.prefix, tenant).active, member);
  }

  async count(tenant: string): Promise<number> {
    return Number(await this.redis.eval(COUNT, 1, quotaKeys(this.prefix, tenant).active, Date.now()));
  }
}
