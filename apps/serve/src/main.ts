import { createServer } from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { ConsoleLogger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { loadConfig, logLevels, ortAllowSpinning, type AppConfig } from '@tq/config';
import { InferenceEngine, initBackend, resolveExecutionProviders } from '@tq/ml';
import { ApiKeyStore, AuditLog, Authenticator } from '@tq/auth';
import { ThrottledLog } from '@tq/contracts';
import {
  AliasStore,
  PrefixClaimKeeper,
  RedisClientHolder,
  RedisVersionMetaCache,
  TenantLimits,
  exitOnForeignPrefix,
} from '@tq/queue';
import { LISTEN_BACKLOG, applyKeepAlive, collectProcessMetrics, runAtNice } from '@tq/runtime';
import { BatchedPredictor, PredictMetrics, ServeMetrics, listReplicas, registerReplica } from '@tq/serving';
import { ArtifactStore, ModelRegistry, blobStoreFromConfig, createOnceSecret, storeIdentity } from '@tq/storage';
import { explainVersion } from '@tq/jobs';
import { ClientDoor } from './client-door';
import { serveHandler } from './serve-http';

/**
 * A serve replica: online predicts (and explains) off the API's event loop, predicts through a
 * dynamic batcher per model version. Two doors (serve-http.ts): clients with their own API keys,
 * and the API's forwards. Bare node:http, not Nest: a few routes, and every microsecond of
 * framework is per request. It registers its URL in Redis with a TTL heartbeat (the API discovers
 * replicas there: adding one adds capacity, no balancer config), and unregisters on SIGTERM.
 */
async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const logger = new ConsoleLogger(`serve-${process.pid}`, { json: config.LOG_JSON, logLevels: logLevels(config) });
  const { refused } = runAtNice(config.SERVE_NICE);
  if (refused) logger.warn(`SERVE_NICE ${config.SERVE_NICE} not applied (${refused})`);
  const blobs = blobStoreFromConfig(config);
  await blobs.check();
  const store = new ArtifactStore(blobs);
  // One Redis client (heartbeat, keys, aliases, quotas, audit); version metadata cached here and
  // invalidated over pub/sub, as in the API (measured: reading metadata.json per predict was a
  // third of a replica's CPU).
  const redis = new RedisClientHolder('worker');
  // Serves only the versions of its own store's prefix (prefix-claim.ts): waits for Redis and the claim.
  const claim = new PrefixClaimKeeper(redis, () => storeIdentity(store), logger, exitOnForeignPrefix(logger));
  await claim.start(true);
  const metas = new RedisVersionMetaCache(redis);
  const registry = new ModelRegistry(store, metas);
  await initBackend(config.TQ_BACKEND);
  const engine = new InferenceEngine({
    registry,
    cacheSize: config.MODEL_CACHE_SIZE,
    cacheBytes: config.MODEL_CACHE_BYTES,
    intraOpNumThreads: config.ORT_INTRA_OP_THREADS,
    allowSpinning: ortAllowSpinning(config, 'serve'),
    executionProviders: resolveExecutionProviders(config.ORT_EXECUTION_PROVIDERS),
  });
  const metricsRegistry = new Registry();
  collectProcessMetrics(metricsRegistry, 'tq_serve_');
  const metrics = new ServeMetrics(metricsRegistry);
  const predictor = new BatchedPredictor(
    engine,
    {
      maxBatchSize: config.SERVE_MAX_BATCH_SIZE,
      maxDelayMs: config.SERVE_MAX_DELAY_MS,
      maxQueueRows: config.SERVE_MAX_QUEUE,
      maxBatchers: config.SERVE_MAX_BATCHERS,
      timeoutMs: config.SERVE_TIMEOUT_MS,
      retryAfterSeconds: config.SERVE_RETRY_AFTER_SECONDS,
    },
    (_tenant, name, version) => metrics.observerFor(name, version),
  );
  const serveKey = await createOnceSecret(store, 'serve-key');
  const door = clientDoor(config, redis, logger);
  const server = createServer(
    serveHandler({
      registry,
      predictor,
      explain: (tenant, meta, body) =>
        explainVersion(
          {
            registry: registry.forTenant(tenant),
            engine: engine.forTenant(tenant),
            maxValues: config.MAX_EXPLAIN_VALUES,
          },
          meta,
          body,
        ),
      metrics,
      metricsRegistry,
      predictMetrics: new PredictMetrics(metricsRegistry),
      serveKey: Buffer.from(serveKey.toString('base64')),
      door: door.door,
      aliases: new AliasStore(redis),
      maxPredictBodyBytes: config.MAX_PREDICT_BODY_BYTES,
      maxSmallBodyBytes: config.MAX_SMALL_JSON_BODY_BYTES,
      maxInflightRequests: config.MAX_INFLIGHT_REQUESTS,
      maxInflightJsonBytes: config.MAX_INFLIGHT_JSON_BYTES,
      log: (message) => logger.error(message),
    }),
  );
  applyKeepAlive(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.SERVE_PORT, config.HOST, LISTEN_BACKLOG, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = config.SERVE_ADVERTISE_URL ?? advertisedUrl(config.HOST, port);
  const registration = await registerReplica(
    redis.client,
    config.QUEUE_PREFIX,
    url,
    config.SERVE_REGISTRATION_TTL_MS,
    (err) => logger.warn(`heartbeat failed: ${String(err)}`),
  );
  logger.log(
    `serving predicts at ${url} (batch ≤ ${config.SERVE_MAX_BATCH_SIZE} rows, delay ≤ ${config.SERVE_MAX_DELAY_MS} ms, queue ≤ ${config.SERVE_MAX_QUEUE} rows, timeout ${config.SERVE_TIMEOUT_MS} ms)`,
  );

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // Out of the registry first, so the API stops sending; then finish what was accepted.
    await registration.stop().catch(() => undefined);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    predictor.close();
    await engine.close().catch(() => undefined);
    door.close();
    claim.close();
    metas.onApplicationShutdown();
    await redis.onApplicationShutdown();
    blobs.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

/**
 * The door for clients' own requests: API keys checked as the API checks them (revocations over
 * pub/sub), refusals audited, the tenant's rate shared by the live replicas (counted once a second).
 */
function clientDoor(config: AppConfig, redis: RedisClientHolder, logger: ConsoleLogger) {
  const authenticator =
    config.AUTH === 'on'
      ? new Authenticator(new ApiKeyStore(redis.client, redis.prefix), {
          adminKey: config.TQ_ADMIN_KEY,
          cacheSeconds: config.AUTH_CACHE_SECONDS,
        })
      : undefined;
  authenticator?.listen(redis.client, (err: unknown) =>
    logger.error(`revocation channel: ${String(err)}; revokes reach this replica within AUTH_CACHE_SECONDS`),
  );
  const audit = new AuditLog(redis.client, redis.prefix, {
    retentionDays: config.AUDIT_RETENTION_DAYS,
    secrets: [config.TQ_ADMIN_KEY],
  });
  const auditErrors = new ThrottledLog((line) => logger.error(line), 10_000);
  let replicas = 1;
  const counting = setInterval(() => {
    listReplicas(redis.client, redis.prefix).then(
      (urls) => (replicas = Math.max(1, urls.length)),
      () => undefined, // Redis away: the last count holds
    );
  }, 1000).unref();
  const door = new ClientDoor({
    authenticator,
    limits: new TenantLimits(redis.client, redis.prefix),
    replicas: () => replicas,
    audit: (record) =>
      void audit.append(record).catch((err: unknown) => auditErrors.log(`audit entry lost: ${String(err)}`, 'write')),
  });
  return {
    door,
    close: () => {
      clearInterval(counting);
      authenticator?.close();
    },
  };
}

/**
 * Where others reach this replica when SERVE_ADVERTISE_URL is unset: HOST, or, when HOST listens on
 * every interface (a container), the machine's hostname (a compose replica's container id, which
 * the compose network's DNS resolves), so `docker compose --scale serve=N` needs no per-replica setting.
 */
function advertisedUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? hostname() : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port}`;
}

void bootstrap().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
