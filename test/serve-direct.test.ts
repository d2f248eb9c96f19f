import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { AuditEntry } from '@tq/contracts';
import { attachOnnx, initBackend } from '@tq/ml';
import { TestSystem } from './support/system';
import { tenantClient } from './support/tenant-keys';
import { registerTestModel } from './support/test-models';
import { waitFor } from './support/wait-for';

const F = 4;
const ROWS = [
  [0.5, -1, 2, 0.25],
  [1, 1, -2, 0],
];
/** The replica's JSON body limit here (the API keeps its default). */
const BODY_LIMIT = 64 * 1024;

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * Clients send predicts straight to a serve replica (the data plane beside the API): the replica
 * checks the API key as the API does, audits a refusal, keeps tenants apart, resolves aliases,
 * holds the tenant's request rate, and answers bad input with the API's 4xx.
 */
describe('predicts sent straight to a serve replica', () => {
  let system: TestSystem;
  let replica: Awaited<ReturnType<TestSystem['addServeReplica']>>;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 6, activation: 'relu', inputShape: [F] }),
      tf.layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });

  before(async () => {
    await initBackend();
    system = await TestSystem.start({ workers: 0 });
    const { registry, meta } = await registerTestModel(system, 'alpha', model, F);
    await attachOnnx(registry, meta, model);
    replica = await system.addServeReplica({ MAX_PREDICT_BODY_BYTES: String(BODY_LIMIT) });
  });
  after(async () => {
    model.dispose();
    await system.stop();
  });

  const direct = async (path: string, body: unknown, headers: Record<string, string> = system.clientHeaders()) => {
    const res = await fetch(replica.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const binary = async (base: string, path: string, bytes: Buffer): Promise<Answer> => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { ...system.clientHeaders(), 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  const expectIssue = (res: Answer, status: number, field: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.issues[0].field, field, JSON.stringify(res.body));
  };

  it('answers a client with its API key as the API does: by version, alias and name@alias', async () => {
    const put = await system.request('PUT', '/v1/models/alpha/aliases/prod', { version: 1 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const viaApi = await system.request('POST', '/v1/models/alpha/versions/1/predict', { instances: ROWS });
    assert.equal(viaApi.status, 200, JSON.stringify(viaApi.body));
    for (const path of [
      '/v1/models/alpha/versions/1/predict',
      '/v1/models/alpha/aliases/prod/predict',
      '/v1/models/alpha@prod/predict',
      '/v1/models/alpha@1/predict',
    ]) {
      const res = await direct(path, { instances: ROWS });
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body.model, { name: 'alpha', version: 1 });
      res.body.predictions.forEach((p: { label: string; scores: number[] }, i: number) => {
        assert.equal(p.label, viaApi.body.predictions[i].label);
        p.scores.forEach((s, j) => assert.ok(Math.abs(s - viaApi.body.predictions[i].scores[j]) < 1e-6));
      });
    }
    // Counted per served version and alias, as the API counts the predicts it takes.
    const metrics = await (await fetch(`${replica.url}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('tq_predict_requests_total{') && l.includes('alias="prod"'));
    assert.ok(line?.includes('outcome="ok"') && Number(line.split(' ').pop()) === 2, metrics);
  });

  it('runs at SERVE_NICE (10 by default) below the API, so a predict burst leaves the API its CPU', () => {
    assert.equal(getPriority(replica.process.pid), 10);
    assert.equal(getPriority(system.apiPid), getPriority(process.pid));
  });

  it('401 without a key or with a wrong one, recorded in the audit log; a revoked key is refused', async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    expectIssue(await direct('/v1/models/alpha/versions/1/predict', { instances: ROWS }, {}), 401, 'Authorization');
    const forged = { authorization: 'Bearer tq_0123456789ab_notthesecret' };
    expectIssue(await direct('/v1/models/alpha@prod/predict', { instances: ROWS }, forged), 401, 'Authorization');
    const audited = await waitFor('the two refusals in the audit log', async () => {
      const page = await system.request('GET', `/v1/audit?result=401&action=predict&since=${since}`);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      const items = page.body.items as AuditEntry[];
      return items.length >= 2 ? items : undefined;
    });
    assert.deepEqual(audited.map((e) => e.action).sort(), [
      'POST /v1/models/:name/versions/:version/predict',
      'POST /v1/models/:ref/predict',
    ]);
    assert.ok(audited.every((e) => e.client && !e.keyId));

    const viewer = await tenantClient(system, 'default', 'viewer');
    const asViewer = { authorization: `Bearer ${viewer.key}` };
    assert.equal((await direct('/v1/models/alpha@prod/predict', { instances: ROWS }, asViewer)).status, 200);
    const id = viewer.key.split('_')[1]!;
    assert.equal((await system.request('DELETE', `/v1/keys/${id}`)).status, 200);
    const refused = await waitFor('the replica to hear of the revocation', async () => {
      const res = await direct('/v1/models/alpha@prod/predict', { instances: ROWS }, asViewer);
      return res.status === 200 ? undefined : res;
    });
    expectIssue(refused, 401, 'Authorization');
  });

  it("another tenant's key gets a 404 for the model, as from the API", async () => {
    const other = await tenantClient(system, 'team-b');
    const res = await direct(
      '/v1/models/alpha/versions/1/predict',
      { instances: ROWS },
      {
        authorization: `Bearer ${other.key}`,
      },
    );
    expectIssue(res, 404, 'version');
  });

  it('bad input: 400 naming the field, 404 for an unknown alias or version, 413 past the body limit', async () => {
    expectIssue(await direct('/v1/models/alpha/versions/1/predict', { instances: [[1, 2, 3]] }), 400, 'instances.0');
    expectIssue(await direct('/v1/models/alpha/versions/1/predict', { rows: ROWS }), 400, 'instances');
    expectIssue(await direct('/v1/models/alpha/versions/1/predict', '{"instances": ['), 400, '(body)');
    expectIssue(await direct('/v1/models/alpha/aliases/nope/predict', { instances: ROWS }), 404, 'alias');
    expectIssue(await direct('/v1/models/alpha/versions/9/predict', { instances: ROWS }), 404, 'version');
    expectIssue(await direct('/v1/models/alpha/versions/x1/predict', { instances: ROWS }), 400, 'version');
    expectIssue(await direct('/v1/models/a%ZZ/versions/1/predict', { instances: ROWS }), 400, 'name');
    expectIssue(await direct('/v1/models/alpha/aliases/..%2Fx/predict', { instances: ROWS }), 400, 'alias');
    const big = { instances: Array.from({ length: 5000 }, () => [0.123456, 0.123456, 0.123456, 0.123456]) };
    assert.ok(JSON.stringify(big).length > BODY_LIMIT);
    const refused = await direct('/v1/models/alpha/versions/1/predict', big);
    expectIssue(refused, 413, '(body)');
    assert.match(refused.body.message, /MAX_PREDICT_BODY_BYTES/);
    // Only versions that exist label a series: names and versions a client makes up add none.
    const metrics = await (await fetch(`${replica.url}/metrics`)).text();
    const series = metrics.split('\n').filter((l) => /^tq_(serve|predict)_requests_total\{/.test(l));
    assert.ok(series.length > 0 && series.every((l) => !/version="(9|x1)"|nope|%ZZ/.test(l)), series.join('\n'));
  });

  it("a JSON predict through the API reaches the replica as sent: the replica's checks answer, naming the field", async () => {
    const viaApi = async (body: unknown): Promise<Answer> => {
      const res = await system.fetch('/v1/models/alpha/versions/1/predict', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    };
    // 400s the replica answered: every one below is, so the API parsed none of these bodies.
    const replica400s = async () =>
      (await (await fetch(`${replica.url}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('tq_serve_requests_total{') && l.includes('code="400"'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const before = await replica400s();
    expectIssue(await viaApi({ instances: [[1, 2, 3]] }), 400, 'instances.0');
    expectIssue(await viaApi({ rows: ROWS }), 400, 'instances');
    const broken = await viaApi('{"instances": [');
    expectIssue(broken, 400, '(body)');
    assert.match(broken.body.message, /not valid JSON/);
    const poisoned = await viaApi('{"instances": [[1, 2, 3, 4]], "a": {"__proto__": {"polluted": "yes"}}}');
    expectIssue(poisoned, 400, 'a.__proto__');
    assert.match(poisoned.body.message, /the key "__proto__" is not allowed in a request body/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(await replica400s(), before + 4);
    const answered = await viaApi({ instances: ROWS });
    assert.equal(answered.status, 200, JSON.stringify(answered.body));
    assert.deepEqual(answered.body, (await direct('/v1/models/alpha/versions/1/predict', { instances: ROWS })).body);
  });

  it('binary rows (application/octet-stream) answer as JSON instances do, straight and through the API', async () => {
    const viaJson = await direct('/v1/models/alpha@1/predict', { instances: ROWS });
    assert.equal(viaJson.status, 200, JSON.stringify(viaJson.body));
    const rows = Buffer.from(Float32Array.from(ROWS.flat()).buffer);
    const straight = await binary(replica.url, '/v1/models/alpha@1/predict', rows);
    const viaApi = await binary(system.url, '/v1/models/alpha/versions/1/predict', rows);
    for (const res of [straight, viaApi]) {
      assert.equal(res.status, 200, JSON.stringify(res.body));
      // The JSON rows are float32-exact (binary fractions), so the answers are the same numbers.
      assert.deepEqual(res.body, viaJson.body);
    }
    const floats = (values: number[]) => Buffer.from(Float32Array.from(values).buffer);
    for (const base of [replica.url, system.url]) {
      const at = `/v1/models/alpha/versions/1/predict`;
      const fiveValues = await binary(base, at, floats([1, 2, 3, 4, 5]));
      expectIssue(fiveValues, 400, '(body)');
      assert.match(fiveValues.body.message, /not whole rows: the model takes 4 features \(16 bytes a row\)/);
      expectIssue(await binary(base, at, Buffer.alloc(6)), 400, '(body)');
      expectIssue(await binary(base, at, Buffer.alloc(0)), 400, '(body)');
      const nan = await binary(base, at, floats([1, 2, NaN, 4]));
      expectIssue(nan, 400, '(body)');
      assert.match(nan.body.message, /value 2 is NaN/);
      expectIssue(await binary(base, '/v1/models/alpha/versions/1/explain', floats([1, 2, 3, 4])), 400, 'content-type');
    }
    const tooLarge = await binary(replica.url, '/v1/models/alpha/versions/1/predict', Buffer.alloc(BODY_LIMIT + 16));
    expectIssue(tooLarge, 413, '(body)');
    assert.match(tooLarge.body.message, /MAX_PREDICT_BODY_BYTES/);
  });

  it('explains on the replica, straight and through the API: integrated gradients whose sum closes the gap', async () => {
    // Requests the replica answered 200 (its only one here: one more means the API forwarded).
    const answeredByReplica = async () => {
      const text = await (await fetch(`${replica.url}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('tq_serve_requests_total{') && l.includes('code="200"'))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    };
    const body = { instances: ROWS, steps: 128, baseline: 'zeros' };
    const straight = await direct('/v1/models/alpha/versions/1/explain', body);
    assert.equal(straight.status, 200, JSON.stringify(straight.body));
    assert.equal(straight.body.explanations.length, 2);
    for (const e of straight.body.explanations) {
      assert.equal(e.attributions.length, F);
      const sum = e.attributions.reduce((a: number, b: number) => a + b, 0);
      assert.ok(Math.abs(sum - (e.value - e.baselineValue)) < 0.01, JSON.stringify(e));
    }
    const before = await answeredByReplica();
    const viaApi = await system.request('POST', '/v1/models/alpha/versions/1/explain', body);
    assert.equal(viaApi.status, 200, JSON.stringify(viaApi.body));
    assert.deepEqual(viaApi.body.explanations, straight.body.explanations);
    assert.equal(await answeredByReplica(), before + 1, 'the API forwarded the explain');
    expectIssue(await direct('/v1/models/alpha/versions/1/explain', { instances: [[1, 2]] }), 400, 'instances.0');
    expectIssue(await direct('/v1/models/alpha/versions/1/explain', { instances: ROWS, steps: 0 }), 400, 'steps');
  });

  it("past the tenant's request rate: 429 with Retry-After naming the quota", async () => {
    const put = await system.request('PUT', '/v1/tenants/slow/quotas', { maxRequestsPerSecond: 1, requestBurst: 2 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const slow = await tenantClient(system, 'slow', 'viewer');
    const answers: Answer[] = [];
    for (let i = 0; i < 6; i++)
      answers.push(
        await direct(
          '/v1/models/alpha/versions/1/predict',
          { instances: ROWS },
          { authorization: `Bearer ${slow.key}` },
        ),
      );
    // The tenant has no model "alpha": 404 until the rate is spent, then 429.
    assert.ok(answers.slice(0, 2).every((a) => a.status === 404));
    const refused = answers.find((a) => a.status === 429);
    assert.ok(refused, answers.map((a) => a.status).join(','));
    expectIssue(refused, 429, 'maxRequestsPerSecond');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  });
});
