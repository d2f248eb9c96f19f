import { LRUCache } from 'lru-cache';

/** The answer for one request: allowed, or refused with the wait until a token is there. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Requests per second per tenant, in this process's memory (no Redis round trip per request): a
 * token bucket per tenant holding up to `burst` tokens, refilled at `ratePerSecond`; a request
 * takes one. Each API replica keeps its own buckets, so N replicas let a tenant send N times the
 * rate: the price of a check that costs nothing. The buckets of the tenants seen last are kept
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
}
