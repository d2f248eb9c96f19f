import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { ModelVersionMeta } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { LocalVersionMetas, VersionMetaCache } from '@tq/storage';
import { createRedisClient, type RedisClient } from './redis-connection';
import { RedisClientHolder } from './redis.provider';

/**
 * Version metadata cached per process (VERSION_META_CACHE_SIZE versions, LRU), invalidated over
 * Redis pub/sub: a registry change publishes the changed key prefix and every API, worker and
 * serve process drops it. A message can be missed only while this process's subscription is down,
 * so nothing is served from the cache then, and everything cached before is dropped when it comes
 * back. Committed versions otherwise never change, so entries need no expiry.
 */
/** The channel registry changes are published on (a key prefix per message). */
export const versionMetaChannel = (prefix: string) => `${prefix}:tq-model-meta-changed`;

@Injectable()
export class RedisVersionMetaCache extends VersionMetaCache implements OnApplicationShutdown {
  private readonly local: LocalVersionMetas;
  private readonly channel: string;
  private readonly subscriber: RedisClient | undefined;
  private listening = false;

  constructor(private readonly redis: RedisClientHolder) {
    super();
    const config = loadConfig();
    this.local = new LocalVersionMetas(Math.max(1, config.VERSION_META_CACHE_SIZE));
    this.channel = versionMetaChannel(redis.prefix);
    if (config.VERSION_META_CACHE_SIZE === 0) return;
    const logger = new Logger('version-meta-cache');
    // A connection of its own: one in subscriber mode can send no other command. The 'events' role:
    // no command timeout, and it reconnects by itself (resubscribing) after an outage.
    this.subscriber = createRedisClient(config, 'events');
    this.subscriber.on('message', (channel: string, prefix: string) => {
      if (channel === this.channel) this.local.forget(prefix);
    });
    this.subscriber.on('ready', () => {
      this.subscriber?.subscribe(this.channel).then(
        () => {
          this.local.forget(''); // what was cached before may have changed while we did not listen
          this.listening = true;
        },
        (err: unknown) => logger.warn(`no metadata invalidations: ${err instanceof Error ? err.message : String(err)}`),
      );
    });
    this.subscriber.on('close', () => {
      this.listening = false;
    });
    // Errors are the main connection's to report (the same Redis); unheard, they would end the process.
    this.subscriber.on('error', () => undefined);
  }

  get(key: string): ModelVersionMeta | undefined {
    return this.listening ? this.local.get(key) : undefined;
  }

  set(key: string, meta: ModelVersionMeta, generation: number): void {
    if (this.listening) this.local.set(key, meta, generation);
  }

  generation(): number {
    return this.local.generation();
  }

  async changed(keyPrefix: string): Promise<void> {
    this.local.forget(keyPrefix);
    await this.redis.client.publish(this.channel, keyPrefix);
  }

  onApplicationShutdown(): void {
    this.subscriber?.disconnect();
  }
}
