import { LRUCache } from 'lru-cache';
import { QUOTA_VARIABLES, QuotaExceededError, type TenantQuotas } from '@tq/contracts';

/** The answer for one request: allowed, or refused with the wait until a token is there. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Requests per second per tenant, in this process's memory (no Redis round trip per request): a
 * token bucket per tenant holding up to `burst` tokens, refilled at `ratePerSecond`; a request
 * takes one. Each process keeps its own buckets: N processes taking a tenant's requests each hold
 * 1/N of its rate (takeShare), so together they allow it once. The buckets of the tenants seen last are kept
 * (at most `maxTenants`); a forgotten bucket starts full again, which only errs towards allowing.
 */
export class RequestRate {
  private readonly buckets: LRUCache<string, Bucket>;

  constructor(maxTenants = 100_000) {
    this.buckets = new LRUCache({ max: maxTenants });
  }

  take(tenant: string, ratePerSecond: number, burst: number, now = performance.now()): RateDecision {
    const bucket = this.buckets.get(tenant) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * ratePerSecond);
    bucket.at = now;
    this.buckets.set(tenant, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / ratePerSecond)) };
  }

  /**
   * One request of `tenant` against its share of its quotas' rate and burst, held by each of
   * `replicas.count` processes of one kind (`replicas.kind`: "API replica", "serve replica"): a
   * QuotaExceededError (429 with Retry-After) naming the setting when the share is spent.
   */
  takeShare(
    tenant: string,
    quotas: Pick<TenantQuotas, 'maxRequestsPerSecond' | 'requestBurst'>,
    replicas: { count: number; kind: string },
  ): void {
    const n = Math.max(1, replicas.count);
    const decision = this.take(tenant, quotas.maxRequestsPerSecond / n, Math.max(1, quotas.requestBurst / n));
    if (decision.allowed) return;
    const limit = quotas.maxRequestsPerSecond;
    throw new QuotaExceededError(
      'maxRequestsPerSecond',
      Math.ceil(limit),
      limit,
      decision.retryAfterSeconds,
      `tenant "${tenant}" sent more than ${limit} requests per second (burst ${quotas.requestBurst}) ` +
        `(${QUOTA_VARIABLES.maxRequestsPerSecond}, or the tenant's override; ` +
        `each of the ${n} ${replicas.kind}${n === 1 ? '' : 's'} allows 1/${n} of it); retry after ${decision.retryAfterSeconds} s`,
    );
  }
}
