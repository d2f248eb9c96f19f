import type { ConnectionOptions } from 'bullmq';
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
