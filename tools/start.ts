import type { ChildProcess } from 'node:child_process';
import { loadConfig, type AppConfig } from '@tq/config';
import { EXIT_FOREIGN_PREFIX } from '@tq/queue';
import { describeStartKeys, prepareStartKeys, type StartKeys } from './api-keys';
import { runDemo } from './demo';
import { ensureRedis, redisPersists } from './ensure-redis';
import { API_MAIN, SERVE_MAIN, WORKER_MAIN, startApp, stopProcess, waitForHttp } from './processes';
import { claimForStart } from './store-claim';

const WORKERS = Number(process.env.TQ_WORKERS ?? 2);
/** Serve replicas (online predicts, apps/serve); the API forwards to them once they register. */
const SERVE_REPLICAS = Number(process.env.TQ_SERVE_REPLICAS ?? 1);

/**
 * `npm start`: Redis (REDIS_URL, else local 6379, else a private redis-server), the API and two
 * workers; prints the URLs, runs the demo pipeline once (TQ_DEMO=0 skips it); Ctrl-C stops everything. A worker that dies is restarted, as a
 * supervisor would, so a killed worker's job is picked up again. API keys: on a first start the
 * admin key is made here and printed once; later starts give the demo a member key of an hour.
 */
async function main(): Promise<void> {
  // A Redis Cluster (REDIS_CLUSTER_NODES) is used as it is: the children read it from the environment.
  const cluster = process.env.REDIS_CLUSTER_NODES;
  const redis = cluster
    ? { url: `cluster ${cluster}`, source: 'REDIS_CLUSTER_NODES', stop: async () => {} }
    : await ensureRedis(process.env.ARTIFACT_DIR ?? '.data');
  // The private redis-server persists (appendonly yes); one reused here may keep nothing on disk.
  if (!cluster && redis.source !== 'private' && (await redisPersists(redis.url)) === false)
    console.warn(
      `[start] WARNING: the Redis at ${redis.url} keeps nothing on disk (appendonly no, save ""): ` +
        'a restart of it loses every job. Run it with --appendonly yes (GET /health reports redis.persistence).',
    );
  const port = process.env.PORT ?? '3000';
  // Children log warnings and errors only: the URLs and the demo are what a first run should show.
  const env = { ...(cluster ? {} : { REDIS_URL: redis.url }), PORT: port, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' };
  // The children's configuration, checked here first: a bad value (a short TQ_ADMIN_KEY, AUTH=off on
  // a public HOST) stops the start with its reason before anything runs.
  let config: AppConfig, keys: StartKeys;
  try {
    config = loadConfig({ ...process.env, ...env });
    // Before any key is made there: the prefix must be this store's (another clone's is refused).
    await claimForStart(config);
    keys = await prepareStartKeys(config, process.env.TQ_DEMO !== '0');
  } catch (err) {
    await redis.stop(); // a private redis-server would outlive this process otherwise
    throw err;
  }
  // One metrics port per worker on this host: WORKER_METRICS_PORT (default 9464) counted up, past the API's.
  const workerPorts = metricsPorts(config.WORKER_METRICS_PORT, WORKERS, config.API_METRICS_PORT);
  const children = new Set<ChildProcess>();
  let stopping = false;
  const spawnWorker = (n: number) => {
    const worker = startApp(WORKER_MAIN, `worker-${n}`, { ...env, WORKER_METRICS_PORT: String(workerPorts[n - 1]) });
    children.add(worker);
    worker.once('exit', (code, signal) => {
      children.delete(worker);
      if (stopping) return;
      if (code === EXIT_FOREIGN_PREFIX) return stopForForeignPrefix(`worker-${n}`);
      console.error(`[start] worker-${n} exited (${signal ?? code}); restarting in 1 s`);
      setTimeout(() => !stopping && spawnWorker(n), 1000);
    });
  };
  // Restarting it would not help: another store took the prefix while this system ran (it said so).
  const stopForForeignPrefix = (name: string) => {
    console.error(`[start] ${name} stopped: QUEUE_PREFIX belongs to another artifact store now; stopping`);
    void shutdown(1);
  };
  const api = startApp(API_MAIN, 'api', env);
  children.add(api);
  api.once('exit', (code) => {
    if (!stopping) {
      console.error(`[start] the API exited (${code}); stopping`);
      void shutdown(1);
    }
  });
  for (let n = 1; n <= WORKERS; n++) spawnWorker(n);
  // One port per replica on this host: SERVE_PORT (default 3100) counted up.
  const servePort = Number(process.env.SERVE_PORT ?? 3100);
  const spawnReplica = (n: number) => {
    const replica = startApp(SERVE_MAIN, `serve-${n}`, {
      ...env,
      SERVE_PORT: String(servePort === 0 ? 0 : servePort + n - 1),
    });
    children.add(replica);
    replica.once('exit', (code, signal) => {
      children.delete(replica);
      if (stopping) return;
      if (code === EXIT_FOREIGN_PREFIX) return stopForForeignPrefix(`serve-${n}`);
      console.error(`[start] serve-${n} exited (${signal ?? code}); restarting in 1 s`);
      setTimeout(() => !stopping && spawnReplica(n), 1000);
    });
  };
  for (let n = 1; n <= SERVE_REPLICAS; n++) spawnReplica(n);

  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await Promise.all([...children].map((c) => stopProcess(c)));
    await redis.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown(0));
  process.on('SIGTERM', () => void shutdown(0));

  const base = `http://localhost:${port}`;
  await waitForHttp(`${base}/health`);
  console.log(
    [
      '',
      `TensorQueue is up (Redis: ${redis.url}, ${redis.source}; ${WORKERS} workers, ${SERVE_REPLICAS} serve replica(s); artifacts in ${process.env.ARTIFACT_DIR ?? '.data'})`,
      `  REST API   ${base}/v1/jobs`,
      `  OpenAPI    ${base}/docs`,
      `  Dashboard  ${base}/admin/queues`,
      ...(SERVE_REPLICAS > 0 && servePort !== 0
        ? [
            `  Predicts   http://localhost:${servePort}/v1/models/:name/versions/:version/predict (straight to serve-1, same key)`,
          ]
        : []),
      `  Health     ${base}/health    Metrics ${base}/metrics${keys.admin === 'AUTH=off' ? '' : ' (with a key)'}` +
        (config.API_METRICS_PORT
          ? `, http://localhost:${config.API_METRICS_PORT}/metrics (no key: API_METRICS_PORT)`
          : ''),
      ...describeStartKeys(keys),
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );
  // The main job on the embedded default, unless TQ_DEMO=0: train → compress → infer on MNIST.
  if (process.env.TQ_DEMO !== '0') {
    await runDemo(base, keys.demo).catch((err: unknown) =>
      console.error(`[demo] failed: ${err instanceof Error ? err.message : String(err)}`),
    );
    console.log('\nThe system keeps running: submit more jobs (`npm run demo` repeats this one), or Ctrl-C to stop.');
  }
}

/** `count` ports from `first` up, skipping `taken` (the API's metrics port); 0 (a free port each) stays 0. */
function metricsPorts(first: number, count: number, taken: number): number[] {
  if (first === 0) return Array.from({ length: count }, () => 0);
  const ports: number[] = [];
  for (let port = first; ports.length < count; port++) if (port !== taken) ports.push(port);
  return ports;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
