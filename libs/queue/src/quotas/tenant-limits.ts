import { LRUCache } from 'lru-cache';
import {
  QUOTA_NAMES,
  tenantQuotasSchema,
  type QuotaName,
  type TenantQuotas,
  type TenantQuotasUpdate,
  type TenantQuotasView,
} from '@tq/contracts';
import { loadConfig, type AppConfig } from '@tq/config';
import type { RedisClient } from '../redis-connection';
import { quotaKeys } from './quota-keys';

/** Every tenant's quotas unless an admin set others: the configuration's. */
export function defaultQuotas(config: AppConfig = loadConfig()): TenantQuotas {
  return {
    maxQueuedJobs: config.TENANT_MAX_QUEUED_JOBS,
    maxActiveJobs: config.TENANT_MAX_ACTIVE_JOBS,
    maxStoredBytes: config.TENANT_MAX_STORED_BYTES,
    maxRequestsPerSecond: config.TENANT_MAX_REQUESTS_PER_SECOND,
    requestBurst: config.TENANT_REQUEST_BURST,
  };
}

/**
 * A tenant's quotas: the configured defaults, with an admin's overrides (a Redis hash per tenant)
 * on top. Each process trusts what it read for QUOTA_CACHE_SECONDS, so a hot path (every request's
 * rate check, every job start) reads Redis at most once per tenant per interval; a change made
 * through this instance applies here at once, elsewhere within that interval.
 */
export class TenantLimits {
  private readonly cache: LRUCache<string, TenantQuotasView>;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    cacheSeconds = loadConfig().QUOTA_CACHE_SECONDS,
  ) {
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(1, cacheSeconds * 1000) });
  }

  async of(tenant: string): Promise<TenantQuotas> {
    return (await this.view(tenant)).quotas;
  }

  async view(tenant: string): Promise<TenantQuotasView> {
    const cached = this.cache.get(tenant);
    if (cached) return cached;
    const stored = await this.redis.hgetall(quotaKeys(this.prefix, tenant).limits);
    const quotas = defaultQuotas();
    const overridden: QuotaName[] = [];
    for (const name of QUOTA_NAMES) {
      const value = stored[name];
      if (value === undefined) continue;
      // Written by set() after validation; a hand-edited bad value falls back to the default.
      const parsed = tenantQuotasSchema.shape[name].safeParse(Number(value));
      if (!parsed.success) continue;
      quotas[name] = parsed.data;
      overridden.push(name);
    }
    const view = { tenant, quotas, overridden };
    this.cache.set(tenant, view);
    return view;
  }

  /** Replaces the tenant's overrides with `update` (a quota left out or null follows the default). */
  async set(tenant: string, update: TenantQuotasUpdate): Promise<TenantQuotasView> {
    const key = quotaKeys(this.prefix, tenant).limits;
    const fields = Object.entries(update).filter((e): e is [string, number] => typeof e[1] === 'number');
    const tx = this.redis.multi().del(key);
    if (fields.length) tx.hset(key, Object.fromEntries(fields.map(([k, v]) => [k, String(v)])));
    await tx.exec();
    this.cache.delete(tenant);
    return this.view(tenant);
  }
}
