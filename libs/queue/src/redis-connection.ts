import type { ConnectionOptions } from 'bullmq';
import { backoffDelay } from '@tq/contracts';
import type { AppConfig } from '@tq/config';

/** BullMQ connection options from REDIS_URL (redis://[user:pass@]host:port[/db], rediss:// for TLS). */
export function connectionFromConfig(config: Pick<AppConfig, 'REDIS_URL'>): ConnectionOptions {
  const url = new URL(config.REDIS_URL);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
    // Workers block on Redis; BullMQ requires this to be null for them (and it is harmless for producers).
    maxRetriesPerRequest: null,
  };
}

/**
 * The worker's BullMQ connections: as connectionFromConfig, and reconnects paced by exponential
 * backoff with jitter up to REDIS_RETRY_MAX_MS (BullMQ's own strategy caps at 20 s without jitter,
 * so a fleet that lost Redis together reconnects together).
 */
export function workerConnectionFromConfig(
  config: Pick<AppConfig, 'REDIS_URL' | 'REDIS_RETRY_MAX_MS'>,
): ConnectionOptions {
  return {
    ...connectionFromConfig(config),
    retryStrategy: (times: number) => backoffDelay(times - 1, { baseMs: 200, capMs: config.REDIS_RETRY_MAX_MS }),
  };
}
