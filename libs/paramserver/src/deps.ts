import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import type { DatasetRef, JobRetention } from '@tq/contracts';
import type { BackendInfo, TabularData } from '@tq/ml';
import type { ArtifactStore, ModelRegistry } from '@tq/storage';
import type { TableDatasets, TableLimits } from '@tq/tables';

/** A connection: one Redis or a Redis Cluster client. */
export type RedisClient = Redis | Cluster;

/**
 * What the entry points are given besides the job's data and hooks. Types only, in a file of
 * their own, so the run's files can share them without importing each other in a circle.
 */

/** The dataset calls a run makes: a table's record and source (DatasetStore). */
export type RunDatasets = TableDatasets;

/** Where a process gets its rows and its starting model: the defaults read the artifact store. */
export interface RunSources {
  datasets?: RunDatasets;
  registry?: ModelRegistry;
  /** Replaces the dataset lookup (tests use a slice of MNIST). */
  loadDataset?: (ref: DatasetRef) => Promise<TabularData>;
  /** Reader bounds for uploaded tables (from @tq/config). */
  tableLimits?: Partial<TableLimits>;
}

/** The aggregator's and the shards' deps. */
export interface ParamServerDeps extends RunSources {
  redis: RedisClient;
  store: ArtifactStore;
  /** Prefix of the run's Redis keys: the BullMQ prefix of the run's queues. */
  keyPrefix: string;
  /** Safety-net TTL of the run's keys (default 24 h; cleanup deletes them when the run ends). */
  keyTtlMs?: number;
  chunkBytes?: number;
  /** Cap of the backoff while a loop retries Redis (REDIS_RETRY_MAX_MS; default 30 s). */
  redisRetryMaxMs?: number;
}

export interface AggregatorDeps extends ParamServerDeps {
  /** Least time between two progress reports (default 500 ms). */
  progressEveryMs?: number;
}

export interface ShardDeps extends ParamServerDeps {
  /** How long a shard waits for its run's aggregator to publish the first weights (default 10 min). */
  joinTimeoutMs?: number;
  /** Test hook: sleep this long after computing each step, before sending it (a deliberately slow worker). */
  stepDelayMs?: number;
}

export interface CoordinatorDeps extends RunSources {
  redis: RedisClient;
  aggregateQueue: Queue;
  shardQueue: Queue;
  store: ArtifactStore;
  registry: ModelRegistry;
  backend?: BackendInfo;
  /** Prefix of the run's Redis keys (default: the aggregate queue's BullMQ prefix). */
  keyPrefix?: string;
  /** How long the run's finished child jobs are kept (the configured job history; DEFAULT_RETENTION when absent). */
  retention?: JobRetention;
  /** How often the coordinator looks at the aggregator job (default 500 ms). */
  pollMs?: number;
  /** Cap of the backoff while the coordinator's watch retries Redis (REDIS_RETRY_MAX_MS; default 30 s). */
  redisRetryMaxMs?: number;
}
