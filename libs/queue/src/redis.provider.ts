import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import { RedisUnavailableError } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { createRedisClient, redisAddress, type RedisClient, type RedisRole } from './redis-connection';
import { redisErrorCause, throttledErrorLog } from './redis-errors';

/** Which app holds the connections (QueueModule.forRoot's role). */
export const REDIS_ROLE = Symbol('REDIS_ROLE');

/** A repeated connection error is logged once per this long (measured: ioredis retries every 100 ms-30 s). */
const ERROR_LOG_INTERVAL_MS = 30_000;

/**
 * One plain ioredis client per process for the app's own small keys (cancel flags, health). In the
 * API it fails fast (apiRedisOptions) and its state is the API's view of Redis: `ready`, the last
 * connection error, and `unavailable()` to turn a failure into the 503 the client gets.
 */
@Injectable()
export class RedisClientHolder implements OnApplicationShutdown {
  readonly client: RedisClient;
  readonly prefix: string;
  /** host:port, for messages. */
  readonly address: string;
  private lastCause: string | undefined;
  private nextRetryMs = 1000;

  constructor(@Optional() @Inject(REDIS_ROLE) role: RedisRole = 'worker') {
    const config = loadConfig();
    this.prefix = config.QUEUE_PREFIX;
    this.address = redisAddress(config);
    // A worker's small reads and writes wait for Redis a while, then fail (they are retried).
    this.client = createRedisClient(config, role, role === 'api' ? {} : { maxRetriesPerRequest: 3 });
    const log = throttledErrorLog(new Logger('redis'), `Redis at ${this.address}`, ERROR_LOG_INTERVAL_MS);
    this.client.on('error', (err: unknown) => {
      this.lastCause = redisErrorCause(err);
      log(err);
    });
    this.client.on('reconnecting', (delayMs: unknown) => {
      if (typeof delayMs === 'number') this.nextRetryMs = delayMs;
    });
    this.client.on('ready', () => {
      this.lastCause = undefined;
    });
  }

  /** Connected and past ioredis's ready check: a command now is sent at once. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** The 503 for a failed command (`err`) or for a connection that is not ready. */
  unavailable(err?: unknown): RedisUnavailableError {
    const reason = this.lastCause ?? (err === undefined ? `connection ${this.client.status}` : redisErrorCause(err));
    return new RedisUnavailableError(this.address, reason, Math.max(1, Math.ceil(this.nextRetryMs / 1000)));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
export const InjectRedis = () => Inject(RedisClientHolder);
