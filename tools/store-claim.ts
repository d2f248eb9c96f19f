import type { AppConfig } from '@tq/config';
import { claimQueuePrefix, createRedisClient, redisAddress, replacedClaimWarning, takeQueuePrefix } from '@tq/queue';
import { ArtifactStore, blobStoreFromConfig, storeIdentity, type StoreIdentity } from '@tq/storage';

/** The identity of the artifact store `config` names (made on a new store: its id is written there). */
async function identityOf(config: AppConfig): Promise<StoreIdentity> {
  const blobs = blobStoreFromConfig(config);
  try {
    await blobs.check();
    return await storeIdentity(new ArtifactStore(blobs));
  } finally {
    blobs.close();
  }
}

async function withRedis<T>(config: AppConfig, fn: (redis: ReturnType<typeof createRedisClient>) => Promise<T>) {
  const redis = createRedisClient(config, 'worker', { maxRetriesPerRequest: 3 });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/**
 * `npm start`'s check before it starts anything: QueuePrefixInUseError (its message says what to
 * do) when the prefix belongs to another store, so one message is printed, not one per process.
 */
export async function claimForStart(config: AppConfig): Promise<void> {
  const identity = await identityOf(config);
  const outcome = await withRedis(config, (redis) =>
    claimQueuePrefix(redis, config.QUEUE_PREFIX, identity, redisAddress(config)),
  );
  if (outcome.kind === 'replaced')
    console.warn(`[start] ${replacedClaimWarning(config.QUEUE_PREFIX, identity.location, outcome.previous)}`);
}

/** `npm run take-prefix`: the prefix given to this configuration's store; who held it before. */
export async function takePrefix(config: AppConfig): Promise<{ identity: StoreIdentity; previous?: string }> {
  const identity = await identityOf(config);
  const previous = await withRedis(config, (redis) => takeQueuePrefix(redis, config.QUEUE_PREFIX, identity));
  return { identity, ...(previous === undefined ? {} : { previous }) };
}
