import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { TestSystem } from './support/system';
import { registerTestModel } from './support/test-models';

const F = 4;
const ROW = [[0.5, -1, 2, 0.25]];

/** A small dense classifier; a seed of its own per version, so versions answer differently. */
function makeModel(seed: number): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 3,
      activation: 'softmax',
      inputShape: [F],
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
    }),
  );
  return m;
}

/**
 * Aliases and canaries over HTTP (API only, no workers): PUT/GET/DELETE, predict by alias in its
 * three path forms, switching under load, a canary's share, tenants, and the per-version metrics.
 */
describe('model aliases and canaries', () => {
  let system: TestSystem;

  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    for (const seed of [1, 2, 3]) {
      const model = makeModel(seed);
      await registerTestModel(system, 'digits', model, F);
      model.dispose();
    }
  });
  after(() => system.stop());

  const put = (alias: string, body: unknown) => system.request('PUT', `/v1/models/digits/aliases/${alias}`, body);
  const predict = (path: string) => system.request('POST', path, { instances: ROW });
  const expectIssue = (res: { status: number; body: any }, status: number, field: string) => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.ok(
      res.body.issues?.some((i: { field: string }) => i.field === field),
      `no issue naming ${field}: ${JSON.stringify(res.body)}`,
    );
  };

  it('creates, lists, replaces and deletes an alias', async () => {
    const created = await put('staging', { version: 1 });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.deepEqual(
      { ...created.body, updatedAt: undefined },
      {
        alias: 'staging',
        model: 'digits',
        version: 1,
        updatedAt: undefined,
      },
    );
    assert.equal((await put('staging', { version: 2, canary: { version: 3, weight: 0.5 } })).status, 200);
    assert.equal((await put('blue', { version: 3 })).status, 200);
    const list = await system.request('GET', '/v1/models/digits/aliases');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(
      list.body.items.map((a: any) => [a.alias, a.version, a.canary]),
      [
        ['blue', 3, undefined],
        ['staging', 2, { version: 3, weight: 0.5 }],
      ],
    );
    const removed = await system.request('DELETE', '/v1/models/digits/aliases/staging');
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal(removed.body.version, 2);
    expectIssue(await system.request('DELETE', '/v1/models/digits/aliases/staging'), 404, 'alias');
    const after = await system.request('GET', '/v1/models/digits/aliases');
    assert.deepEqual(
      after.body.items.map((a: any) => a.alias),
      ['blue'],
    );
  });

  it('predicts by alias through each path form; the answer names the version that served it', async () => {
    assert.equal((await put('production', { version: 2 })).status, 200);
    const byVersion = await predict('/v1/models/digits/versions/2/predict');
    assert.equal(byVersion.status, 200, JSON.stringify(byVersion.body));
    for (const path of [
      '/v1/models/digits@production/predict',
      '/v1/models/digits/aliases/production/predict',
      '/v1/models/digits@2/predict',
    ]) {
      const res = await predict(path);
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body.model, { name: 'digits', version: 2 }, path);
      assert.deepEqual(res.body.predictions, byVersion.body.predictions, path);
    }
    const v1 = await predict('/v1/models/digits/versions/1/predict');
    assert.notDeepEqual(v1.body.predictions, byVersion.body.predictions, 'the versions must differ for this test');
  });

  it('answers binary rows (application/octet-stream) as it answers JSON instances, on the API itself', async () => {
    const rows = Float32Array.from([...ROW[0]!, 0, 0.75, -0.5, 1]);
    const json = await system.request('POST', '/v1/models/digits/versions/2/predict', {
      instances: [ROW[0], [0, 0.75, -0.5, 1]],
    });
    assert.equal(json.status, 200, JSON.stringify(json.body));
    for (const path of ['/v1/models/digits/versions/2/predict', '/v1/models/digits@production/predict']) {
      const res = await system.fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from(rows.buffer),
      });
      assert.equal(res.status, 200, path);
      assert.deepEqual(await res.json(), json.body, path);
    }
    const odd = await system.fetch('/v1/models/digits/versions/2/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from(rows.buffer, 0, 20),
    });
    expectIssue({ status: odd.status, body: await odd.json() }, 400, '(body)');
    const notPredict = await system.fetch('/v1/models/digits/aliases/x', {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: Buffer.from(rows.buffer),
    });
    expectIssue({ status: notPredict.status, body: await notPredict.json() }, 400, 'content-type');
  });

  it("takes predict's large body limit on the alias paths (over MAX_SMALL_JSON_BODY_BYTES, 1 MiB)", async () => {
    const instances = Array.from({ length: 70_000 }, () => ROW[0]);
    assert.ok(JSON.stringify({ instances }).length > 1 << 20);
    for (const path of ['/v1/models/digits@production/predict', '/v1/models/digits/aliases/production/predict']) {
      const res = await system.request('POST', path, { instances });
      assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.equal(res.body.predictions.length, instances.length);
    }
  });

  it('404 naming the alias or version that does not exist', async () => {
    expectIssue(await predict('/v1/models/digits@nope/predict'), 404, 'alias');
    expectIssue(await predict('/v1/models/digits/aliases/nope/predict'), 404, 'alias');
    expectIssue(await predict('/v1/models/digits@9/predict'), 404, 'version');
    expectIssue(await predict('/v1/models/other@production/predict'), 404, 'alias');
    expectIssue(await put('x', { version: 9 }), 404, 'version');
    expectIssue(await put('x', { version: 1, canary: { version: 9, weight: 0.1 } }), 404, 'canary.version');
    expectIssue(await system.request('PUT', '/v1/models/other/aliases/x', { version: 1 }), 404, 'version');
    expectIssue(await system.request('DELETE', '/v1/models/digits/aliases/nope'), 404, 'alias');
  });

  it('400 for bad alias names, versions and weights, never a 5xx', async () => {
    for (const alias of ['Prod', 'a.b', 'a..b', 'a%2Fb', 'a%40b', '-x', 'x'.repeat(65)])
      expectIssue(await put(alias, { version: 1 }), 400, 'alias');
    expectIssue(await predict('/v1/models/digits/aliases/a.b/predict'), 400, 'alias');
    expectIssue(await predict('/v1/models/digits@a.b/predict'), 400, 'ref');
    expectIssue(await predict('/v1/models/digits/predict'), 400, 'ref');
    for (const weight of [1.5, -0.1, '0.3', null])
      expectIssue(await put('x', { version: 1, canary: { version: 2, weight } }), 400, 'canary.weight');
    expectIssue(await put('x', { version: 0 }), 400, 'version');
    expectIssue(await put('x', { version: 1.5 }), 400, 'version');
    expectIssue(await put('x', {}), 400, 'version');
    const extra = await put('x', { version: 1, versoin: 2 });
    assert.equal(extra.status, 400, JSON.stringify(extra.body));
  });

  it('switching the alias while 200 predicts run fails none of them', async () => {
    assert.equal((await put('live', { version: 1 })).status, 200);
    const inFlight = Array.from({ length: 200 }, () => predict('/v1/models/digits@live/predict'));
    const switches: number[] = [];
    for (let i = 0; i < 10; i++) {
      const version = (i % 3) + 1;
      const res = await put('live', i % 2 ? { version } : { version, canary: { version: 3, weight: 0.5 } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      switches.push(version);
    }
    const results = await Promise.all(inFlight);
    const failed = results.filter((r) => r.status !== 200);
    assert.deepEqual(failed, [], `${failed.length} predicts failed during the switches`);
    for (const r of results) assert.ok([1, 2, 3].includes(r.body.model.version), JSON.stringify(r.body.model));
    // After the last switch every predict sees it at once (no cache to expire).
    const last = switches.at(-1)!;
    for (let i = 0; i < 5; i++)
      assert.equal((await predict('/v1/models/digits@live/predict')).body.model.version, last);
  });

  it('a canary at weight 0.3 serves about 30% of 500 requests', async () => {
    assert.equal((await put('canaried', { version: 1, canary: { version: 3, weight: 0.3 } })).status, 200);
    const versions: number[] = [];
    for (let batch = 0; batch < 25; batch++) {
      const results = await Promise.all(
        Array.from({ length: 20 }, () => predict('/v1/models/digits@canaried/predict')),
      );
      for (const r of results) {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        versions.push(r.body.model.version);
      }
    }
    const share = versions.filter((v) => v === 3).length / versions.length;
    assert.deepEqual(new Set(versions), new Set([1, 3]));
    assert.ok(share >= 0.2 && share <= 0.4, `canary share ${share} over ${versions.length}`);
    // Weight 0 and 1 are exact.
    assert.equal((await put('canaried', { version: 1, canary: { version: 3, weight: 1 } })).status, 200);
    for (let i = 0; i < 5; i++)
      assert.equal((await predict('/v1/models/digits@canaried/predict')).body.model.version, 3);
    assert.equal((await put('canaried', { version: 1, canary: { version: 3, weight: 0 } })).status, 200);
    for (let i = 0; i < 5; i++)
      assert.equal((await predict('/v1/models/digits@canaried/predict')).body.model.version, 1);
  });

  it("a tenant's aliases are invisible to another tenant", async () => {
    assert.equal((await put('shared', { version: 1 })).status, 200);
    const made = await system.request('POST', '/v1/keys', { name: 'other-member', tenant: 'other', role: 'member' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const as = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(system.url + path, {
        method,
        headers: { authorization: `Bearer ${made.body.key}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    expectIssue(await as('POST', '/v1/models/digits@shared/predict', { instances: ROW }), 404, 'alias');
    expectIssue(await as('POST', '/v1/models/digits/aliases/shared/predict', { instances: ROW }), 404, 'alias');
    assert.deepEqual((await as('GET', '/v1/models/digits/aliases')).body, { items: [] });
    expectIssue(await as('DELETE', '/v1/models/digits/aliases/shared'), 404, 'alias');
    // Its own model of that name does not exist either: the alias cannot point at the other tenant's.
    expectIssue(await as('PUT', '/v1/models/digits/aliases/shared', { version: 1 }), 404, 'version');
    assert.equal((await predict('/v1/models/digits@shared/predict')).status, 200);
  });

  it('/metrics counts predicts per served version, alias and canary draw; only versions that exist', async () => {
    const bad = await system.request('POST', '/v1/models/digits/versions/1/predict', { instances: [[1, 2]] });
    expectIssue(bad, 400, 'instances.0');
    expectIssue(await predict('/v1/models/digits/versions/99/predict'), 404, 'version');
    const res = await system.fetch('/metrics');
    const text = await res.text();
    const sample = (labels: RegExp) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('tq_predict_requests_total{') && labels.test(l))
        .reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.ok(sample(/alias="canaried".*canary="true".*outcome="ok"/) >= 100, 'canary requests of "canaried"');
    assert.ok(sample(/version="1",alias="canaried",canary="false".*outcome="ok"/) >= 250, 'main requests');
    assert.ok(sample(/version="1",alias="".*outcome="client_error"/) >= 1, 'a 400 of version 1 is its client error');
    assert.equal(sample(/version="99"/), 0, 'a version that does not exist labels no series');
    assert.match(text, /tq_predict_duration_seconds_bucket\{[^}]*version="3",alias="canaried",canary="true"/);
  });
});
