import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { startRedisServer, type RedisServer } from '../tools/ensure-redis';
import { freePort } from '../tools/free-port';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

const IRIS_TRAIN = {
  model: { name: 'iris', layers: [{ type: 'dense', units: 3, activation: 'softmax', inputShape: [4] }] },
  dataset: { builtin: 'iris' },
  fit: { epochs: 1 },
};
/** Every route that used to hang while Redis was away must answer within this long. */
const ROUTE_BOUND_MS = 2000;

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  body: any;
}

/**
 * A private redis-server (never the shared one) under the API and one worker: killed, hung
 * (SIGSTOP), restarted from its append-only file, and restarted empty without persistence.
 */
describe('a Redis outage', () => {
  let dir: string;
  let port: number;
  let server: RedisServer;
  let system: TestSystem;
  let probe: Redis;
  let kept: string;

  const call = async (method: string, path: string, body?: unknown): Promise<Answer> => {
    const started = Date.now();
    const res = await system.fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status: res.status, ms: Date.now() - started, retryAfter: res.headers.get('retry-after'), body: parsed };
  };
  const health = () => call('GET', '/health');
  /** Every job of the train queue, by id (a probe of our own on the private Redis). */
  const trainJobIds = async () => {
    const ids = new Set<string>();
    for (const key of await probe.keys(`${system.prefix}:train:*`)) {
      const m = /:train:(train-[^:]+)$/.exec(key);
      if (m?.[1]) ids.add(m[1]);
    }
    return [...ids].sort();
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tq-outage-'));
    port = await freePort();
    server = await startRedisServer({ dir: join(dir, 'aof'), port, persist: true });
    probe = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    probe.on('error', () => {});
    // The worker serves only compress: it lives through the outages, and train jobs stay waiting
    // (a job to cancel, a queue whose content the test knows).
    system = await TestSystem.start({
      workers: 1,
      workerEnv: { WORKER_QUEUES: 'compress' },
      env: { REDIS_URL: server.url, REDIS_COMMAND_TIMEOUT_MS: '1000', REDIS_RETRY_MAX_MS: '300' },
    });
  });
  after(async () => {
    // stop() deletes the test's keys: it needs a Redis that answers.
    if (server.child.exitCode !== null || server.child.signalCode !== null)
      server = await startRedisServer({ dir: join(dir, 'aof'), port, persist: true });
    else server.child.kill('SIGCONT');
    await system.stop();
    probe.disconnect();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports a persisting Redis as "aof"', async () => {
    const submitted = await call('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    kept = submitted.body.id;
    const h = await health();
    assert.equal(h.status, 200);
    assert.equal(h.body.status, 'ok');
    assert.equal(h.body.redis.persistence, 'aof');
    assert.deepEqual(h.body.warnings, []);
    await probe.connect();
  });

  it('answers every route within 2 s with 503 and Retry-After while Redis is down', async () => {
    await server.kill();
    const first = await waitFor('/health to see Redis gone', async () => {
      const h = await health();
      return h.status === 503 ? h : undefined;
    });
    assert.match(first.body.redis.error, new RegExp(`^Redis at 127\\.0\\.0\\.1:${port} is unreachable: `));
    // Once a reconnect was refused, the message names why.
    const down = await waitFor('/health to name the refused connection', async () => {
      const h = await health();
      return /unreachable: ECONNREFUSED$/.test(h.body.redis.error ?? '') ? h : undefined;
    });
    assert.equal(down.status, 503);
    assert.equal(down.body.status, 'degraded');
    assert.ok(down.ms < 1000, `/health took ${down.ms} ms`);
    console.log(`# /health with Redis down: ${down.ms} ms`);
    const routes: [string, string, unknown?][] = [
      ['GET', `/v1/jobs/${kept}`],
      ['GET', '/v1/jobs'],
      ['POST', '/v1/jobs/train', IRIS_TRAIN],
      ['DELETE', `/v1/jobs/${kept}`],
      ['GET', '/admin/queues'],
      ['GET', '/admin/queues/api/queues'],
    ];
    for (const [method, path, body] of routes) {
      const a = await call(method, path, body);
      console.log(`# ${method} ${path} with Redis down: ${a.status} in ${a.ms} ms`);
      assert.equal(a.status, 503, `${method} ${path}: ${JSON.stringify(a.body)}`);
      assert.ok(a.ms < ROUTE_BOUND_MS, `${method} ${path} took ${a.ms} ms`);
      assert.match(a.retryAfter ?? '', /^\d+$/, `${method} ${path}: Retry-After`);
      assert.match(a.body.message, new RegExp(`^Redis at 127\\.0\\.0\\.1:${port} is unreachable: `));
      assert.doesNotMatch(JSON.stringify(a.body), /at .*\.js:\d+|\/dist\//, 'no stack, no path');
    }
    const metrics = await call('GET', '/metrics');
    console.log(`# GET /metrics with Redis down: ${metrics.status} in ${metrics.ms} ms`);
    assert.equal(metrics.status, 200);
    assert.ok(metrics.ms < ROUTE_BOUND_MS, `/metrics took ${metrics.ms} ms`);
    assert.match(metrics.body, /^tq_redis_up 0$/m);
    assert.doesNotMatch(metrics.body, /^tq_jobs\{/m);
    assert.match(metrics.body, /^tq_api_process_resident_memory_bytes /m);
  });

  it('after a restart from its append-only file: the job is kept, no ghost submission, no late cancel', async () => {
    server = await startRedisServer({ dir: join(dir, 'aof'), port, persist: true });
    const up = await waitFor('/health to see Redis back', async () => {
      const h = await health();
      return h.status === 200 ? h : undefined;
    });
    assert.equal(up.body.status, 'ok', JSON.stringify(up.body));
    assert.equal(up.body.redis.persistence, 'aof');
    // Each of the API's connections reconnects on its own (within a second): 503 with Retry-After
    // until the one a route uses is back, as a client that honours Retry-After sees it.
    const job = await waitFor('the job route to be back', async () => {
      const j = await call('GET', `/v1/jobs/${kept}`);
      return j.status === 503 ? undefined : j;
    });
    assert.equal(job.status, 200);
    assert.equal(job.body.state, 'waiting');
    assert.deepEqual(await trainJobIds(), [kept]);
    assert.equal(await probe.exists(`${system.prefix}:tq-cancel:${kept}`), 0);
    const metrics = await call('GET', '/metrics');
    assert.match(metrics.body, /^tq_redis_up 1$/m);
    // Submitting and cancelling work again (and load BullMQ's scripts into the restarted Redis, so
    // that a command sent to it while hung, next, runs when it wakes instead of meeting NOSCRIPT).
    const other = await call('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal(other.status, 202);
    assert.equal((await call('DELETE', `/v1/jobs/${other.body.id}`)).body.state, 'cancelled');
    assert.deepEqual(await trainJobIds(), [kept]);
  });

  it('a hung Redis: requests answer 503 after the command timeout, and what they sent is undone', async () => {
    const stream = `${system.prefix}:train:events`;
    const last = (await probe.xrevrange(stream, '+', '-', 'COUNT', 1))[0]?.[0];
    server.child.kill('SIGSTOP');
    try {
      const hung = await health();
      console.log(`# /health with Redis hung: ${hung.status} in ${hung.ms} ms`);
      assert.equal(hung.status, 503);
      assert.ok(hung.ms < 1000, `/health took ${hung.ms} ms`);
      const submit = await call('POST', '/v1/jobs/train', IRIS_TRAIN);
      const cancel = await call('DELETE', `/v1/jobs/${kept}`);
      for (const [what, a] of [
        ['POST /v1/jobs/train', submit],
        ['DELETE', cancel],
      ] as const) {
        console.log(`# ${what} with Redis hung: ${a.status} in ${a.ms} ms`);
        assert.equal(a.status, 503, JSON.stringify(a.body));
        assert.ok(a.ms < ROUTE_BOUND_MS + 1000, `${what} took ${a.ms} ms`);
        assert.match(a.body.message, /Command timed out/);
      }
    } finally {
      server.child.kill('SIGCONT');
    }
    // What the submission sent ran when Redis woke up. Its first command is the tenant's queued-job
    // admission (no job added after it timed out): a slot for a job that does not exist, which the
    // usage read prunes, so the tenant counts only the job it has.
    const usage = await waitFor('the late admission pruned', async () => {
      const u = await call('GET', '/v1/tenants/default/usage');
      return u.status === 200 && u.body.usage?.queuedJobs === 1 ? u : undefined;
    });
    console.log(`# after Redis woke up the tenant counts ${usage.body.usage.queuedJobs} queued job`);
    assert.equal(
      (await probe.xrange(stream, last ? `(${last}` : '-', '+')).filter(([, f]) => f[1] === 'added').length,
      0,
    );
    assert.deepEqual(await trainJobIds(), [kept]);
    assert.equal((await call('GET', `/v1/jobs/${kept}`)).body.state, 'waiting');
    assert.equal(await probe.exists(`${system.prefix}:tq-cancel:${kept}`), 0);
  });

  it('restarted empty (no persistence): degraded naming the loss, 410 for an issued job, 404 for others', async () => {
    await server.kill();
    server = await startRedisServer({ dir: join(dir, 'empty'), port, persist: false });
    const h = await waitFor('/health to see the data loss', async () => {
      const a = await health();
      return a.status === 200 && a.body.redis.dataLost ? a : undefined;
    });
    console.log(`# /health after the empty restart: ${JSON.stringify(h.body.warnings)}`);
    assert.equal(h.body.status, 'degraded');
    assert.equal(h.body.redis.persistence, 'none');
    assert.ok(h.body.warnings.some((w: string) => /lost its data \(restarted empty at \d{4}-/.test(w)));
    assert.ok(h.body.warnings.some((w: string) => /keeps nothing on disk/.test(w)));
    const gone = await waitFor('the job route to be back', async () => {
      const g = await call('GET', `/v1/jobs/${kept}`);
      return g.status === 503 ? undefined : g;
    });
    assert.equal(gone.status, 410, JSON.stringify(gone.body));
    assert.match(gone.body.message, /was issued here and is no longer kept: Redis lost its data at \d{4}-/);
    assert.equal((await call('DELETE', `/v1/jobs/${kept}`)).status, 410);
    const madeUp = `train-${randomUUID()}-${randomBytes(6).toString('hex')}`;
    assert.equal((await call('GET', `/v1/jobs/${madeUp}`)).status, 404);
    assert.equal((await call('GET', `/v1/jobs/train-${randomUUID()}`)).status, 404);
    // Still degraded later: the loss is kept, not forgotten at the next check.
    assert.equal((await health()).body.status, 'degraded');
  });
});
