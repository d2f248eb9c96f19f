import type { ConnectionOptions } from 'bullmq';
import Redis, { Cluster, type RedisOptions } from 'ioredis';
import { backoffDelay } from '@tq/contracts';
import type { AppConfig } from '@tq/config';

/** A connection of the system: one Redis (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;
/** ioredis options, as this file sets them. */
type ClientOptions = Omit<RedisOptions, 'replyMapping'>;

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
/** Where Redis is: REDIS_URL, or the cluster of REDIS_CLUSTER_NODES when set. */
export type RedisTarget = Pick<AppConfig, 'REDIS_URL'> & Partial<Pick<AppConfig, 'REDIS_CLUSTER_NODES'>>;
type ConnectionConfig = RedisTarget & Partial<FailFastConfig>;

/**
 * BullMQ's connection for `role`. From REDIS_URL (redis://[user:pass@]host:port[/db], rediss://
 * for TLS): options, BullMQ makes and closes its own clients. With REDIS_CLUSTER_NODES: a Cluster
 * client (BullMQ makes none from options) that the caller closes (closeConnection): a Queue or a
 * Worker's commands share it, a QueueEvents or a Worker's blocking reads use a duplicate BullMQ
 * makes and closes. Connecting at once, not lazily: BullMQ connect()s a lazy client itself, and a
 * cluster that is down then fails that promise for good (measured: an API started before its
 * cluster answered /health ok once it came up, and 503 to every submission).
 */
export function connectionFromConfig(config: ConnectionConfig, role: RedisRole = 'worker'): ConnectionOptions {
  if (config.REDIS_CLUSTER_NODES) return createRedisClient(config, role);
  return redisOptionsFor(config, role) as ConnectionOptions;
}

/** Closes what connectionFromConfig made for a cluster; options need nothing. */
export async function closeConnection(connection: ConnectionOptions): Promise<void> {
  if (connection instanceof Cluster) await connection.quit().catch(() => connection.disconnect());
}

/**
 * Every Redis client of the system comes from here: a plain one for REDIS_URL, a Cluster client
 * for REDIS_CLUSTER_NODES, with `role`'s behaviour while Redis is away either way (`overrides`
 * for the few that differ, e.g. lazyConnect).
 */
export function createRedisClient(
  config: ConnectionConfig,
  role: RedisRole = 'worker',
  overrides: Partial<ClientOptions> = {},
): RedisClient {
  const options = { ...redisOptionsFor(config, role), ...overrides };
  if (!config.REDIS_CLUSTER_NODES) return new Redis(options);
  // On a cluster, reconnecting and queueing are the cluster client's (clusterRetryStrategy,
  // enableOfflineQueue); the rest (timeouts, resends, credentials, TLS) is each node's.
  const { retryStrategy, enableOfflineQueue, lazyConnect, host: _host, port: _port, db: _db, ...node } = options;
  return new Cluster(config.REDIS_CLUSTER_NODES, {
    redisOptions: node,
    clusterRetryStrategy: retryStrategy ?? null,
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
  });
}

/** ioredis options of `role` for REDIS_URL (its host unused on a cluster). */
function redisOptionsFor(config: ConnectionConfig, role: RedisRole): ClientOptions {
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
  } satisfies ClientOptions;
  if (config.REDIS_RETRY_MAX_MS === undefined) return base;
  const retryStrategy = redisRetryStrategy(reconnectCapMs(role, config.REDIS_RETRY_MAX_MS));
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
    retryStrategy: redisRetryStrategy(reconnectCapMs('api', config.REDIS_RETRY_MAX_MS)),
    connectTimeout: Math.max(1000, config.REDIS_COMMAND_TIMEOUT_MS),
  };
}

/**
 * The API reconnects at least once a second: every request answers 503 until each of its
 * connections is back, so a connection that waited out a long backoff kept the API down for up to
 * REDIS_RETRY_MAX_MS after Redis returned (measured: the job routes 503 while /health said ok). A
 * refused connect costs nothing, and its log is throttled. Workers keep the full cap (a fleet).
 */
export function reconnectCapMs(role: RedisRole, maxMs: number): number {
  return role === 'worker' ? maxMs : Math.min(maxMs, API_RECONNECT_CAP_MS);
}
const API_RECONNECT_CAP_MS = 1000;

/**
 * Reconnect delays about 100, 200, 400 ms ... capped at `maxMs` (REDIS_RETRY_MAX_MS), each with jitter
 * (between half and all of it): quick after a blip, one try per cap during a long outage, and a fleet
 * that lost Redis together does not come back in one burst. ioredis's default (min(50 n, 2000)) never
 * backs off further, BullMQ's (e^n, 1-20 s) has no jitter.
 */
export function redisRetryStrategy(maxMs: number): (times: number) => number {
  return (times) => backoffDelay(times - 1, { baseMs: 100, capMs: maxMs });
}

/** host:port of REDIS_URL, or "cluster host:port,..." for REDIS_CLUSTER_NODES, for messages: never the credentials. */
export function redisAddress(config: RedisTarget): string {
  if (config.REDIS_CLUSTER_NODES)
    return `cluster ${config.REDIS_CLUSTER_NODES.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const url = new URL(config.REDIS_URL);
  return `${url.hostname}:${url.port || 6379}`;
}

/** The masters of a cluster (each holds its own slots: a SCAN covers one node), or the one Redis. */
export function redisMasters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/**
 * Every key matching `pattern`, a batch at a time, on every master of a cluster: a Cluster client
 * has no scanStream, and SCAN on it would ask one node at random.
 */
export async function* scanKeys(client: RedisClient, pattern: string, count = 1000): AsyncGenerator<string[]> {
  for (const node of redisMasters(client))
    for await (const batch of node.scanStream({ match: pattern, count }) as AsyncIterable<string[]>)
      if (batch.length) yield batch;
}
