import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { attachOnnx, initBackend, mulberry32 } from '@tq/ml';
import { TestSystem } from './support/system';
import { registerTestModel } from './support/test-models';

const F = 4;
const PATH = '/v1/models/alpha/versions/1/predict';

function makeModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 8,
      activation: 'relu',
      inputShape: [F],
      kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      biasInitializer: 'ones',
    }),
  );
  m.add(
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }) }),
  );
  return m;
}

/** Registers "alpha" v1 (with model.onnx, so replicas and the inline path both run onnxruntime) in the default tenant. */
async function registerAlpha(system: TestSystem): Promise<tf.LayersModel> {
  await initBackend();
  const model = makeModel();
  const { registry } = await registerTestModel(system, 'alpha', model, F);
  await attachOnnx(registry, { name: 'alpha', version: 1 }, model);
  return model;
}

function rowsFor(i: number, n: number): number[][] {
  const rand = mulberry32(1000 + i);
  return Array.from({ length: n }, () => Array.from({ length: F }, () => rand() * 4 - 2));
}

/** Sum of a replica's series `name` (with `filter` in its labels) in its /metrics text. */
async function metric(url: string, name: string, filter = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith(`${name}{`) && line.includes(filter)) sum += Number(line.split(' ').pop());
  return sum;
}

describe('online serving on serve replicas', () => {
  let system: TestSystem;
  let model: tf.LayersModel;
  const replicas: { process: import('node:child_process').ChildProcess; url: string }[] = [];

  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    model = await registerAlpha(system);
  });
  after(async () => {
    model.dispose();
    await system.stop();
  });

  it('answers the same on replicas as inline, and the API forwards once replicas register', async () => {
    const body = { instances: rowsFor(0, 5) };
    const inline = await system.request('POST', PATH, body);
    assert.equal(inline.status, 200, JSON.stringify(inline.body));
    replicas.push(await system.addServeReplica({ SERVE_MAX_DELAY_MS: '20' }));
    replicas.push(await system.addServeReplica({ SERVE_MAX_DELAY_MS: '20' }));
    // The API reads the replica list at most once a second: poll until a replica counts a request.
    const served = async () =>
      (await metric(replicas[0]!.url, 'tq_serve_requests_total')) +
      (await metric(replicas[1]!.url, 'tq_serve_requests_total'));
    while ((await served()) === 0) {
      const meanwhile = await system.request('POST', PATH, body);
      assert.equal(meanwhile.status, 200, JSON.stringify(meanwhile.body));
    }
    const answer = await system.request('POST', PATH, body);
    assert.equal(answer.body.predictions.length, 5);
    answer.body.predictions.forEach((p: { label: string; scores: number[] }, i: number) => {
      assert.equal(p.label, inline.body.predictions[i].label);
      p.scores.forEach((s, j) => assert.ok(Math.abs(s - inline.body.predictions[i].scores[j]) < 1e-6));
    });
  });

  it('64 concurrent predicts coalesce into batches, and each gets its own rows’ predictions', async () => {
    const bodies = Array.from({ length: 64 }, (_, i) => ({ instances: rowsFor(100 + i, 1 + (i % 3)) }));
    const answers = await Promise.all(bodies.map((b) => system.request('POST', PATH, b)));
    answers.forEach((a, i) => {
      assert.equal(a.status, 200, JSON.stringify(a.body));
      const rows = bodies[i]!.instances;
      const expected = tf.tidy(() => (model.predict(tf.tensor2d(rows)) as tf.Tensor).arraySync() as number[][]);
      assert.equal(a.body.predictions.length, rows.length);
      a.body.predictions.forEach((p: { scores: number[] }, r: number) =>
        p.scores.forEach((s, j) => assert.ok(Math.abs(s - expected[r]![j]!) < 1e-4, `request ${i} row ${r}`)),
      );
    });
    // A batch above 1 row that holds more than one request: batches of rows > the largest request (3).
    let coalesced = 0;
    for (const r of replicas) {
      const all = await metric(r.url, 'tq_serve_batch_size_bucket', 'le="+Inf"');
      const upTo2 = await metric(r.url, 'tq_serve_batch_size_bucket', 'le="2"');
      coalesced += all - upTo2;
    }
    assert.ok(coalesced > 0, 'no batch larger than 2 rows: requests did not coalesce');
  });

  it('a replica killed during a burst: every predict answers 200 or a clear 503, and job reads stay answered', async () => {
    const victim = replicas[0]!;
    let done = 0;
    const burst = Array.from({ length: 120 }, (_, i) =>
      system.request('POST', PATH, { instances: rowsFor(500 + i, 2) }).then((r) => {
        done++;
        return r;
      }),
    );
    while (done < 10) await new Promise((r) => setImmediate(r));
    victim.process.kill('SIGKILL');
    const jobRead = await system.request('GET', '/v1/jobs/train-00000000000000000000000000000000');
    assert.ok(jobRead.status < 500, `job read during the burst: ${jobRead.status}`);
    const answers = await Promise.all(burst);
    const statuses = answers.map((a) => a.status);
    for (const s of statuses) assert.ok(s === 200 || s === 503, `status ${s}`);
    const ok = statuses.filter((s) => s === 200).length;
    assert.ok(ok >= statuses.length * 0.9, `${ok} of ${statuses.length} answered 200 with one replica left`);
    // And afterwards every predict lands on the survivor.
    const after = await system.request('POST', PATH, { instances: rowsFor(1, 1) });
    assert.equal(after.status, 200, JSON.stringify(after.body));
  });
});

describe('serve replica admission control', () => {
  let system: TestSystem;
  let model: tf.LayersModel;

  before(async () => {
    // No gate in the API (API_MAX_CONCURRENT_PREDICTS): the burst below must reach the replica's queue.
    system = await TestSystem.start({ workers: 0, env: { SERVE_MODE: 'replicas', API_MAX_CONCURRENT_PREDICTS: '0' } });
    model = await registerAlpha(system);
  });
  after(async () => {
    model.dispose();
    await system.stop();
  });

  it('SERVE_MODE=replicas with none registered answers 503 with Retry-After', async () => {
    const res = await system.fetch(PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: rowsFor(0, 1) }),
    });
    assert.equal(res.status, 503, await res.text());
    assert.equal(res.headers.get('retry-after'), '1');
  });

  it('beyond SERVE_MAX_QUEUE a predict is refused 429 with Retry-After, the rest answer', async () => {
    const replica = await system.addServeReplica({
      SERVE_MAX_QUEUE: '1',
      SERVE_MAX_BATCH_SIZE: '1',
      SERVE_MAX_DELAY_MS: '0',
      SERVE_RETRY_AFTER_SECONDS: '3',
    });
    // Until the API lists the replica it answers 503.
    while ((await metric(replica.url, 'tq_serve_requests_total')) === 0)
      await system.request('POST', PATH, { instances: rowsFor(0, 1) });
    let refused: Response | undefined;
    for (let round = 0; !refused && round < 20; round++) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          system.fetch(PATH, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ instances: rowsFor(i, 50) }),
          }),
        ),
      );
      for (const a of answers) assert.ok(a.status === 200 || a.status === 429, `status ${a.status}`);
      refused = answers.find((a) => a.status === 429);
    }
    assert.ok(refused, 'no 429 in 20 rounds of 100 concurrent predicts against a queue of 1 row');
    assert.equal(refused.headers.get('retry-after'), '3');
    const body = (await refused.json()) as { message: string };
    assert.match(body.message, /SERVE_MAX_QUEUE/);
    assert.ok((await metric(replica.url, 'tq_serve_rejections_total', 'reason="queue_full"')) > 0);
  });
});
