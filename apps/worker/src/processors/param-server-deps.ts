import { loadConfig, tableLimits } from '@tq/config';
import type { ParamServerDeps } from '@tq/paramserver';
import type { RedisClientHolder } from '@tq/queue';
import type { ArtifactStore, DatasetStore } from '@tq/storage';

/** What the aggregator and shard processors give the parameter server: one Redis, the stores, table limits. */
export function paramServerDeps(
  redis: RedisClientHolder,
  store: ArtifactStore,
  datasets: DatasetStore,
): ParamServerDeps {
  const config = loadConfig();
  return {
    redis: redis.client,
    keyPrefix: redis.prefix,
    store,
    datasets,
    tableLimits: tableLimits(config),
    redisRetryMaxMs: config.REDIS_RETRY_MAX_MS,
  };
}
