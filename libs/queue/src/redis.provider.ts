import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { loadConfig } from '@tq/config';

/** One plain ioredis client per process for the app's own small keys (cancel flags, health). */
@Injectable()
export class RedisClientHolder implements OnApplicationShutdown {
  readonly client = new Redis(loadConfig().REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: false });
  readonly prefix = loadConfig().QUEUE_PREFIX;

  async onApplicationShutdown(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
export const InjectRedis = () => Inject(RedisClientHolder);
