import type { ConnectionOptions } from 'bullmq';
import { backoffDelay } from '@tq/contracts';
import type { AppConfig } from '@tq/config';

/**
 * Who holds a connection, which decides how it behaves while Redis is away:
 * - `worker`: waits for Redis (BullMQ requires maxRetriesPerRequest null for its blocking workers).
 * - `api`: fails fast so a request answers 503 instead of hanging (see apiRedisOptions).
 * - `events`: the API's QueueEvents streams. Blocking (XREAD BLOCK 10 s), so no command timeout
 *   (it would cut every read) and the offline queue stays (without it BullMQ's read loop retries
 *   every 5 ms while Redis is down); no request ever awaits them.
 */
export type RedisRole = 'worker' | 'api' | 'events';

type RetryConfig = Pick<AppConfig, 'REDIS_RETRY_MAX_MS'>;
type FailFastConfig = RetryConfig & Pick<AppConfig, 'REDIS_COMMAND_TIMEOUT_MS'>;

/** BullMQ connection options from REDIS_URL (redis://[user:pass@]host:port[/db], rediss:// for TLS). */
export function connectionFromConfig(
  config: Pick<AppConfig, 'REDIS_URL'> & Partial<FailFastConfig>,
  role: RedisRole = 'worker',
): ConnectionOptions {
  const url = new URL(config.REDIS_URL);
  const base = {
    host: url.hostname,
    port: Number(url.port || 6379),
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
    db: url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0,
    tls: url.protocol === 'rediss:' ? {} : undefined,
    // Workers block on Redis; BullMQ requires this to be null for them (and it is harmless for producers).
    maxRetriesPerRequest: null,
  } satisfies ConnectionOptions;
  if (config.REDIS_RETRY_MAX_MS === undefined) return base;
  const retryStrategy = redisRetryStrategy(config.REDIS_RETRY_MAX_MS);
  if (role === 'worker' || role === 'events' || config.REDIS_COMMAND_TIMEOUT_MS === undefined)
    return { ...base, retryStrategy };
  return { ...base, ...apiRedisOptions(config as FailFastConfig) };
}

export interface FailFastOptions {
  enableOfflineQueue: false;
  commandTimeout: number;
  autoResendUnfulfilledCommands: false;
  maxRetriesPerRequest: 0;
  retryStrategy: (times: number) => number;
  connectTimeout: number;
}

/**
 * The API's fail-fast options. No offline queue: a command while Redis is away fails at once
 * ("Stream isn't writeable") and is never sent later, when the client has given up. A command
 * timeout: one sent to a Redis that hangs fails after REDIS_COMMAND_TIMEOUT_MS. And nothing is
 * resent after a reconnect: ioredis by default re-sends the commands that were in flight when the
 * connection dropped (autoResendUnfulfilledCommands), which is how an abandoned submission became
 * a ghost job; maxRetriesPerRequest 0 rejects them at the drop instead of keeping them.
 */
export function apiRedisOptions(config: FailFastConfig): FailFastOptions {
  return {
    enableOfflineQueue: false,
    commandTimeout: config.REDIS_COMMAND_TIMEOUT_MS,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: redisRetryStrategy(config.REDIS_RETRY_MAX_MS),
    connectTimeout: Math.max(1000, config.REDIS_COMMAND_TIMEOUT_MS),
  };
}

/**
 * Reconnect delays about 100, 200, 400 ms ... capped at `maxMs` (REDIS_RETRY_MAX_MS), each with jitter
 * (between half and all of it): quick after a blip, one try per cap during a long outage, and a fleet
 * that lost Redis together does not come back in one burst. ioredis's default (min(50 n, 2000)) never
 * backs off further, BullMQ's (e^n, 1-20 s) has no jitter.
 */
export function redisRetryStrategy(maxMs: number): (times: number) => number {
  return (times) => backoffDelay(times - 1, { baseMs: 100, capMs: maxMs });
}

/** host:port of REDIS_URL, for messages: never the credentials. */
export function redisAddress(redisUrl: string): string {
  const url = new URL(redisUrl);
  return `${url.hostname}:${url.port || 6379}`;
}
