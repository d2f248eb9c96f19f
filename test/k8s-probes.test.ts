import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { freePort } from '../tools/free-port';
import { stopProcess, waitForHttp } from '../tools/processes';
import { renderKustomization, type K8sObject } from './support/k8s-manifests';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

/**
 * The probes of deploy/k8s, against real processes whose Redis dies (a private redis-server, killed with
 * SIGKILL, then started again on the same port): readiness of the API fails, so the Service stops sending it
 * requests; liveness of the API and of a worker keeps answering, so the kubelet restarts nobody; when Redis
 * is back the API is ready again by itself. Paths and timeouts are read from the rendered manifests.
 */

const K8S = join(findRoot(__dirname), 'deploy', 'k8s');

function findRoot(from: string): string {
  for (let dir = from; dir !== dirname(dir); dir = dirname(dir))
    if (existsSync(join(dir, 'deploy', 'k8s')) && existsSync(join(dir, 'package.json'))) return dir;
  throw new Error(`no deploy/k8s above ${from}`);
}

function startRedis(port: number): ChildProcess {
  return spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
}

async function redisAnswers(url: string): Promise<true | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG' ? true : undefined;
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** What the kubelet sees of an HTTP probe: the status, or 0 when no answer came within the probe's timeout. */
async function probe(url: string, timeoutSeconds: number): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(timeoutSeconds * 1000) })).status;
  } catch {
    return 0;
  }
}

const containerOf = (objects: K8sObject[], name: string): K8sObject => {
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === name);
  assert.ok(deployment, name);
  return deployment.spec.template.spec.containers[0];
};

describe('the probes of deploy/k8s while Redis is down', () => {
  let redisPort: number;
  let redis: ChildProcess;
  let system: TestSystem;
  let worker: ChildProcess;
  let workerMetrics: string;
  let api: K8sObject;
  let workerContainer: K8sObject;
  let apiMetricsPort: number;
  /** Where the kubelet sends an API probe: PORT (`http`) or API_METRICS_PORT (`metrics`), as the manifest names it. */
  const apiProbe = (probe: K8sObject) => {
    const ports: Record<string, string> = { http: new URL(system.url).port, metrics: String(apiMetricsPort) };
    const port = ports[probe.httpGet.port as string];
    assert.ok(port, `the API's probe names port ${probe.httpGet.port}`);
    return `http://127.0.0.1:${port}${probe.httpGet.path}`;
  };

  before(async () => {
    const objects = renderKustomization(join(K8S, 'overlays', 'small'));
    api = containerOf(objects, 'tq-api');
    workerContainer = containerOf(objects, 'tq-worker-train');
    redisPort = await freePort();
    redis = startRedis(redisPort);
    const url = `redis://127.0.0.1:${redisPort}`;
    await waitFor('the private redis-server', () => redisAnswers(url), 10_000);
    // The API's liveness probe reaches its metrics listener (API_METRICS_PORT): the port it names, here a free one.
    apiMetricsPort = await freePort();
    system = await TestSystem.start({ workers: 0, env: { REDIS_URL: url, API_METRICS_PORT: String(apiMetricsPort) } });
    const metricsPort = await freePort();
    worker = system.addWorker({ WORKER_QUEUES: 'train', WORKER_METRICS_PORT: String(metricsPort) });
    workerMetrics = `http://127.0.0.1:${metricsPort}${workerContainer.livenessProbe.httpGet.path}`;
    await waitForHttp(workerMetrics);
  });
  after(async () => {
    // Redis back first: stop() removes the test's keys.
    if (redis && (redis.exitCode !== null || redis.signalCode !== null)) {
      redis = startRedis(redisPort);
      await waitFor('redis back for the clean-up', () => redisAnswers(`redis://127.0.0.1:${redisPort}`), 10_000);
    }
    await system?.stop();
    if (redis) await stopProcess(redis, 'SIGTERM', 5000);
  });

  it('with Redis up, every probe passes', async () => {
    assert.equal(await probe(apiProbe(api.readinessProbe), api.readinessProbe.timeoutSeconds), 200);
    assert.equal(await probe(apiProbe(api.livenessProbe), api.livenessProbe.timeoutSeconds), 200);
    assert.equal(await probe(workerMetrics, workerContainer.livenessProbe.timeoutSeconds), 200);
  });

  it('Redis killed: the API turns unready, and both liveness probes still pass (nobody is restarted)', async () => {
    await stopProcess(redis, 'SIGKILL', 5000);
    await waitFor('the API readiness probe to fail', async () => {
      const status = await probe(apiProbe(api.readinessProbe), api.readinessProbe.timeoutSeconds);
      return status === 200 ? undefined : status;
    });
    // As many liveness periods as the kubelet would tolerate failing: every one must pass.
    for (let i = 0; i < api.livenessProbe.failureThreshold; i++) {
      assert.equal(await probe(apiProbe(api.livenessProbe), api.livenessProbe.timeoutSeconds), 200);
      assert.equal(await probe(workerMetrics, workerContainer.livenessProbe.timeoutSeconds), 200);
    }
    assert.equal(worker.exitCode, null, 'the worker process is still running');
  });

  it('Redis back: the API is ready again by itself', async () => {
    redis = startRedis(redisPort);
    await waitFor('the API readiness probe to pass', async () =>
      (await probe(apiProbe(api.readinessProbe), api.readinessProbe.timeoutSeconds)) === 200 ? true : undefined,
    );
  });
});
