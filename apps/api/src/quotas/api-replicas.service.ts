import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { ThrottledLog } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { RedisClientHolder, announcePresence, type Presence } from '@tq/queue';

/** The role API replicas announce themselves under (@tq/queue presence). */
export const API_ROLE = 'api';

/**
 * This API replica among the others: it announces itself in Redis (a heartbeat every third of
 * API_REPLICA_TTL_MS) and learns how many are alive, so that each takes an even share of a
 * tenant's request rate (RequestRateGuard). Redis away: the last count holds (1 before any).
 */
@Injectable()
export class ApiReplicas implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('api-replicas');
  private readonly errors = new ThrottledLog((line) => this.logger.warn(line), 60_000);
  private presence: Presence | undefined;

  constructor(private readonly redis: RedisClientHolder) {}

  /** Live API replicas, this one included; at least 1. */
  get live(): number {
    return this.presence?.live ?? 1;
  }

  onApplicationBootstrap(): void {
    const member = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    const onError = (err: unknown) =>
      this.errors.log(`announcing this API replica: ${String(err)} (the rate share keeps its last count)`, 'beat');
    const ttlMs = loadConfig().API_REPLICA_TTL_MS;
    const presence = announcePresence(this.redis.client, this.redis.prefix, API_ROLE, member, ttlMs, onError);
    this.presence = presence;
    // The API's connection has no offline queue: the first heartbeat goes once it is ready.
    const first = () => void presence.beat().catch(onError);
    this.redis.client.on('ready', first);
    if (this.redis.ready) first();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.presence?.stop().catch(() => undefined);
  }
}
