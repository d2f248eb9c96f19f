import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ArtifactStore, storeIdentity } from '@tq/storage';
import { PrefixClaimKeeper, exitOnForeignPrefix } from './prefix-claim-keeper';
import { REDIS_ROLE, RedisClientHolder } from './redis.provider';
import type { RedisRole } from './redis-connection';

/**
 * The API's and the worker's claim on QUEUE_PREFIX for their artifact store (prefix-claim.ts). A
 * worker's init waits for it, and BullMQ's workers start after init (onApplicationBootstrap), so
 * a worker on another store's prefix never takes a job. The API claims at its first connection.
 */
@Injectable()
export class PrefixClaimService implements OnModuleInit, OnApplicationShutdown {
  private keeper: PrefixClaimKeeper | undefined;

  constructor(
    private readonly redis: RedisClientHolder,
    @Inject(ArtifactStore) private readonly store: ArtifactStore,
    @Inject(REDIS_ROLE) private readonly role: RedisRole,
  ) {}

  async onModuleInit(): Promise<void> {
    const logger = new Logger('store');
    this.keeper = new PrefixClaimKeeper(
      this.redis,
      () => storeIdentity(this.store),
      logger,
      exitOnForeignPrefix(logger),
    );
    await this.keeper.start(this.role !== 'api');
  }

  onApplicationShutdown(): void {
    this.keeper?.close();
  }
}
