import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../tools/free-port';
import { API_MAIN, WORKER_MAIN, startApp, stopProcess } from '../tools/processes';
import { startRedisCluster, type RedisCluster } from '../tools/redis-cluster';
import { TestSystem, nodesOf } from './support/system';
import { waitFor } from './support/wait-for';

const IRIS_TRAIN = {
  model: {
    name: 'iris',
    layers: [
      { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
      { type: 'dense', units: 3, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'iris' },
  fit: { epochs: 60, batchSize: 16, optimizer: 'adam', learningRate: 0.02, validationSplit: 0, seed: 7 },
};

/**
 * The system on a 3-master Redis Cluster of its own (REDIS_CLUSTER_NODES, a QUEUE_PREFIX with a
 * hash tag): the API and two workers train, compress, infer, predict and cancel as on one Redis.
 */
describe('on a 3-master Redis Cluster', () => {
  let cluster: RedisCluster;
  let system: TestSystem;
  let client: Cluster;
  let trained: { name: string; version: number };
  before(async () => {
    cluster = await startRedisCluster(3);
    system = await TestSystem.start({ workers: 2, env: { REDIS_CLUSTER_NODES: cluster.nodes } });
    client = new Cluster(nodesOf(cluster.nodes));
  });
  after(async () => {
    client?.disconnect();
    await system?.stop();
    await cluster?.stop();
  });

  it('answers /health ok with the cluster state and each master persisting', async () => {
    const health = await system.request('GET', '/health');
    assert.equal(health.status, 200, JSON.stringify(health.body));
    assert.equal(health.body.status, 'ok', JSON.stringify(health.body));
    assert.equal(health.body.redis.persistence, 'aof', 'every master runs with appendonly yes');
  });

  it('trains iris, compresses, batch-infers and predicts', async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const job = await system.waitForJob(submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.ok(job.result.metrics.accuracy >= 0.9, `accuracy ${job.result.metrics.accuracy}`);
    trained = job.result.model;

    const compress = await system.request('POST', '/v1/jobs/compress', {
      source: trained,
      quantize: { dtype: 'uint8' },
    });
    const compressed = await system.waitForJob(compress.body.id);
    assert.equal(compressed.state, 'completed', JSON.stringify(compressed));

    const instances = [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
    ];
    const infer = await system.request('POST', '/v1/jobs/infer', { model: trained, input: { instances } });
    const inferred = await system.waitForJob(infer.body.id);
    assert.equal(inferred.state, 'completed', JSON.stringify(inferred));
    const lines = String((await system.request('GET', `/v1/jobs/${infer.body.id}/output`)).body)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string });
    assert.deepEqual(
      lines.map((l) => l.label),
      ['setosa', 'virginica'],
    );

    const predicted = await system.request('POST', `/v1/models/iris/versions/${trained.version}/predict`, {
      instances: [[6.7, 3.0, 5.2, 2.3]],
    });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    assert.equal(predicted.body.predictions[0].label, 'virginica');
  });

  it('cancels a running job', async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', {
      ...IRIS_TRAIN,
      model: { ...IRIS_TRAIN.model, name: 'iris-long' },
      fit: { ...IRIS_TRAIN.fit, epochs: 1000, batchSize: 1 },
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    await system.waitForJob(submitted.body.id, ['active']);
    const cancel = await system.request('DELETE', `/v1/jobs/${submitted.body.id}`);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    const job = await system.waitForJob(submitted.body.id, ['cancelled', 'completed', 'failed'], 60_000);
    assert.equal(job.state, 'cancelled', JSON.stringify(job));
  });

  it('lists jobs, serves metrics and the dashboard', async () => {
    const listed = await system.request('GET', '/v1/jobs?type=train');
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.equal(listed.body.items.length, 2);
    assert.equal((await system.request('GET', '/metrics')).status, 200);
    const page = await system.fetch(`/admin/queues`);
    assert.equal(page.status, 200);
    const queues = await system.request('GET', '/admin/queues/api/queues');
    assert.equal(queues.status, 200, JSON.stringify(queues.body).slice(0, 500));
    // The audit stream lives in the prefix's slot too (checked below): written and read there.
    const audit = await system.request('GET', '/v1/audit?action=POST /v1/jobs/train');
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    assert.ok(audit.body.items.length >= 2, JSON.stringify(audit.body));
  });

  it('keeps every key of the system in the prefix hash tag slot', async () => {
    await client.ping();
    const slots = new Set<number>();
    let keys = 0;
    for (const node of client.nodes('master')) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${system.prefix}:*`, 'COUNT', 1000);
        cursor = next;
        keys += batch.length;
        for (const key of batch) slots.add(Number(await node.cluster('KEYSLOT', key)));
      } while (cursor !== '0');
    }
    assert.ok(keys > 10, `${keys} keys`);
    assert.equal(slots.size, 1, `slots ${[...slots].join(', ')}`);
  });

  it('stops a worker on SIGTERM (its cluster connections closed, nothing left hanging)', async () => {
    const worker = system.workers[0]!;
    await stopProcess(worker, 'SIGTERM', 20_000);
    assert.notEqual(worker.signalCode, 'SIGKILL', 'it exited by itself, not killed after 20 s');
  });

  it('answers 503 while the master of its slot is down, serves again once it is back, and loses no running job', async (t) => {
    // A job mid-run when the node dies: it must end (completed here), never vanish.
    const running = await system.request('POST', '/v1/jobs/train', {
      ...IRIS_TRAIN,
      model: { ...IRIS_TRAIN.model, name: 'iris-midjob' },
      fit: { ...IRIS_TRAIN.fit, epochs: 1000, batchSize: 2 },
    });
    assert.equal(running.status, 202, JSON.stringify(running.body));
    await waitFor('the job to train', async () => {
      const view = (await system.request('GET', `/v1/jobs/${running.body.id}`)).body;
      return view.state === 'active' && view.progress?.epoch > 0 ? true : undefined;
    });
    const slot = Number(await client.cluster('KEYSLOT', system.prefix));
    const ranges = await client.cluster('SLOTS');
    const port = ranges.find(([from, to]) => from <= slot && slot <= to)?.[2]?.[1];
    const master = cluster.servers.find((s) => s.port === port);
    assert.ok(master, `the master of slot ${slot}`);
    await master.kill();

    // The other masters mark it failed after the node timeout (5 s): the cluster state turns fail.
    const down = await waitFor(
      '/health 503',
      async () => {
        const health = await system.request('GET', '/health');
        return health.status === 503 ? health : undefined;
      },
      30_000,
    );
    assert.equal(down.body.status, 'degraded');
    t.diagnostic(`/health while down: ${JSON.stringify(down.body.redis)}`);
    const submit = await system.fetch(`/v1/jobs/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(IRIS_TRAIN),
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(submit.status, 503, await submit.text());
    assert.ok(submit.headers.get('retry-after'), 'with Retry-After');

    await cluster.restart(master.port);
    await waitFor(
      '/health ok again',
      async () => ((await system.request('GET', '/health')).body.status === 'ok' ? true : undefined),
      60_000,
    );
    const again = await system.request('POST', '/v1/jobs/train', {
      ...IRIS_TRAIN,
      fit: { ...IRIS_TRAIN.fit, epochs: 2 },
    });
    assert.equal(again.status, 202, JSON.stringify(again.body));
    assert.equal((await system.waitForJob(again.body.id, undefined, 120_000)).state, 'completed');
    const survived = await system.waitForJob(running.body.id, undefined, 240_000);
    t.diagnostic(`the job running through the outage: ${survived.state}, attempts ${survived.attempts}`);
    assert.equal(survived.state, 'completed', JSON.stringify(survived));
  });
});

/**
 * An API and a worker started while their cluster is down (a fleet started before its Redis):
 * /health answers 503 meanwhile, and once the cluster is up they serve without a restart. BullMQ
 * connect()s a lazy cluster client itself, and that first failure used to stay for good: /health
 * turned ok, every submission kept answering 503.
 */
describe('started while the Redis Cluster is down', () => {
  let cluster: RedisCluster;
  let dir: string;
  const children: ChildProcess[] = [];
  let url: string;
  // Outside TestSystem: the API key this test's requests carry is its own.
  const adminKey = randomBytes(32).toString('base64url');
  const auth = { authorization: `Bearer ${adminKey}` };
  before(async () => {
    cluster = await startRedisCluster(3);
    await Promise.all(cluster.servers.map((s) => s.kill()));
    dir = await mkdtemp(join(tmpdir(), 'tq-cluster-late-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const env = {
      REDIS_CLUSTER_NODES: cluster.nodes,
      QUEUE_PREFIX: `{tqc-late-${port}}`,
      ARTIFACT_DIR: dir,
      PORT: String(port),
      LOG_LEVEL: 'error',
      WORKER_METRICS_PORT: '0',
      API_METRICS_PORT: '0',
      TQ_ADMIN_KEY: adminKey,
    };
    const quiet = !process.env.TQ_TEST_VERBOSE;
    children.push(startApp(API_MAIN, 'api', env, quiet, dir), startApp(WORKER_MAIN, 'worker', env, quiet, dir));
  });
  after(async () => {
    await Promise.all(children.map((c) => stopProcess(c, 'SIGTERM', 5000)));
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 until the cluster is up, then takes and runs jobs', async () => {
    const health = () =>
      fetch(`${url}/health`).then(
        (r) => r.status,
        () => 0,
      );
    await waitFor('the API answering 503', async () => ((await health()) === 503 ? true : undefined), 60_000);
    await Promise.all(cluster.servers.map((s) => cluster.restart(s.port)));
    await waitFor('/health 200', async () => ((await health()) === 200 ? true : undefined), 60_000);
    const submit = () =>
      fetch(`${url}/v1/jobs/train`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ ...IRIS_TRAIN, fit: { ...IRIS_TRAIN.fit, epochs: 2 } }),
      });
    // Every connection reconnects on its own backoff: the queues' may come a little after /health's.
    const accepted = await waitFor(
      'a submission accepted',
      async () => {
        const res = await submit();
        return res.status === 202 ? ((await res.json()) as { id: string }) : undefined;
      },
      30_000,
    );
    const done = await waitFor(
      'the job done',
      async () => {
        const job = (await (await fetch(`${url}/v1/jobs/${accepted.id}`, { headers: auth })).json()) as {
          state: string;
        };
        return ['completed', 'failed', 'cancelled'].includes(job.state) ? job : undefined;
      },
      120_000,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done));
  });
});
