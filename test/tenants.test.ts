import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

/**
 * Tenants (issue 11) in the running system: keys of two tenants made by the admin, A's jobs,
 * datasets, models and outputs invisible to B (404 with the body of a missing one), the same model
 * name and Idempotency-Key in both without a clash, an admin that sees both, and A's objects
 * stored under tenants/a-<run>/.
 */
describe('tenants', { timeout: 900_000 }, () => {
  let system: TestSystem;
  const run = Math.random().toString(36).slice(2, 8);
  const tenantA = `a-${run}`;
  const tenantB = `b-${run}`;
  let keyA: string;
  let keyB: string;
  let viewerA: string;

  /** A request with another key than the system's admin one. */
  async function as(key: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(system.url + path, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined || body instanceof FormData ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: body instanceof FormData ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // JSONL or empty: kept as text
    }
    return { status: res.status, body: parsed };
  }

  async function newKey(tenant: string, role: string): Promise<string> {
    const res = await system.request('POST', '/v1/keys', { name: `${tenant}-${role}`, tenant, role });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.key as string;
  }

  /** Job `id` once it ended, read with `key` (its tenant's). */
  function done(key: string, id: string): Promise<any> {
    return waitFor(
      `job ${id} to end`,
      async () => {
        const res = await as(key, 'GET', `/v1/jobs/${id}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return ['completed', 'failed', 'cancelled'].includes(res.body.state) ? res.body : undefined;
      },
      300_000,
    );
  }

  async function submit(key: string, path: string, body: unknown, headers: Record<string, string> = {}) {
    const res = await as(key, 'POST', path, body, headers);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  }

  const irisTrain = (name: string) => ({
    model: {
      name,
      layers: [
        { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
    },
    dataset: { builtin: 'iris' },
    fit: { epochs: 2, seed: 1 },
  });

  /** A small labelled table: two numeric columns, a category, a label. */
  function table(): string {
    const rows = ['x,y,colour,label'];
    for (let i = 0; i < 60; i++) {
      const big = i % 2 === 0;
      rows.push(`${big ? 5 + (i % 3) : i % 3},${big ? 1 : 4},${big ? 'red' : 'blue'},${big ? 'big' : 'small'}`);
    }
    return `${rows.join('\n')}\n`;
  }

  // What A made, filled in by the first test and used by the others.
  const a = {
    datasetId: '',
    trainId: '',
    tableTrainId: '',
    compressId: '',
    inferInlineId: '',
    inferTableId: '',
    model: { name: 'shared', version: 0 },
    tableModel: { name: '', version: 0 },
  };

  before(async () => {
    system = await TestSystem.start({ workers: 1 });
    [keyA, keyB, viewerA] = [
      await newKey(tenantA, 'member'),
      await newKey(tenantB, 'member'),
      await newKey(tenantA, 'viewer'),
    ];
  });
  after(() => system?.stop());

  it('A uploads, trains, compresses, infers (inline and table) and predicts in its tenant', async () => {
    const form = new FormData();
    form.append('file', new Blob([table()]), 'sizes.csv');
    form.append('labelColumn', 'label');
    const up = await as(keyA, 'POST', '/v1/datasets', form);
    assert.equal(up.status, 201, JSON.stringify(up.body));
    a.datasetId = up.body.id;

    a.trainId = await submit(keyA, '/v1/jobs/train', irisTrain('shared'));
    a.tableTrainId = await submit(keyA, '/v1/jobs/train', {
      model: {
        name: 'sizes',
        layers: [
          { type: 'dense', units: 8, activation: 'relu' },
          { type: 'dense', units: 2, activation: 'softmax' },
        ],
      },
      dataset: { id: a.datasetId },
      fit: { epochs: 2, seed: 1 },
    });
    const trained = await done(keyA, a.trainId);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));
    assert.equal(trained.tenant, tenantA);
    a.model = trained.result.model;
    const tableTrained = await done(keyA, a.tableTrainId);
    assert.equal(tableTrained.state, 'completed', JSON.stringify(tableTrained));
    a.tableModel = tableTrained.result.model;

    a.compressId = await submit(keyA, '/v1/jobs/compress', { source: a.model, quantize: { dtype: 'uint8' } });
    const compressed = await done(keyA, a.compressId);
    assert.equal(compressed.state, 'completed', JSON.stringify(compressed));

    a.inferInlineId = await submit(keyA, '/v1/jobs/infer', {
      model: a.model,
      input: { instances: [[5.1, 3.5, 1.4, 0.2]] },
    });
    a.inferTableId = await submit(keyA, '/v1/jobs/infer', {
      model: a.tableModel,
      input: { dataset: { id: a.datasetId } },
    });
    for (const id of [a.inferInlineId, a.inferTableId]) {
      const job = await done(keyA, id);
      assert.equal(job.state, 'completed', JSON.stringify(job));
      const out = await as(keyA, 'GET', `/v1/jobs/${id}/output`);
      assert.equal(out.status, 200, JSON.stringify(out.body));
    }
    const predicted = await as(keyA, 'POST', `/v1/models/shared/versions/${a.model.version}/predict`, {
      instances: [[5.1, 3.5, 1.4, 0.2]],
    });
    assert.equal(predicted.status, 200, JSON.stringify(predicted.body));
    // A viewer of A reads A's model and predicts with it.
    const viewed = await as(viewerA, 'POST', `/v1/models/shared/versions/${a.model.version}/predict`, {
      instances: [[5.1, 3.5, 1.4, 0.2]],
    });
    assert.equal(viewed.status, 200, JSON.stringify(viewed.body));
    assert.equal((await as(viewerA, 'GET', `/v1/jobs/${a.trainId}`)).status, 200);
  });

  it("B gets 404 for each of A's jobs, its dataset and its models, with the body of a missing one", async () => {
    // The same shape as an id, a dataset and a model that never existed.
    const missing = `${a.trainId.slice(0, -1)}${a.trainId.endsWith('0') ? '1' : '0'}`; // its tag no longer verifies
    const missingJob = await as(keyB, 'GET', `/v1/jobs/${missing}`);
    assert.equal(missingJob.status, 404);
    const jobIds = [a.trainId, a.tableTrainId, a.compressId, a.inferInlineId, a.inferTableId];
    for (const id of jobIds) {
      for (const [method, path] of [
        ['GET', `/v1/jobs/${id}`],
        ['GET', `/v1/jobs/${id}/output`],
        ['GET', `/v1/jobs/${id}/errors`],
        ['GET', `/v1/jobs/${id}/events`],
        ['DELETE', `/v1/jobs/${id}`],
      ] as const) {
        const res = await as(keyB, method, path);
        assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
        assert.equal(
          bodyText(res.body).replaceAll(id, '<id>'),
          bodyText(missingJob.body).replaceAll(missing, '<id>'),
          `${method} ${path}`,
        );
      }
    }
    const missingDataset = await as(keyB, 'GET', '/v1/datasets/00000000-0000-4000-8000-000000000000');
    const dataset = await as(keyB, 'GET', `/v1/datasets/${a.datasetId}`);
    assert.equal(dataset.status, 404);
    assert.equal(
      bodyText(dataset.body).replaceAll(a.datasetId, '<id>'),
      bodyText(missingDataset.body).replaceAll('00000000-0000-4000-8000-000000000000', '<id>'),
    );
    const v = a.model.version;
    const missingModel = await as(keyB, 'GET', `/v1/models/never-${run}/versions/${v}`);
    for (const [method, path, body] of [
      ['GET', `/v1/models/shared`, undefined],
      ['GET', `/v1/models/shared/versions/${v}`, undefined],
      ['GET', `/v1/models/shared/versions/${v}/model.json`, undefined],
      ['GET', `/v1/models/shared/versions/${v}/weights.bin`, undefined],
      ['POST', `/v1/models/shared/versions/${v}/predict`, { instances: [[5.1, 3.5, 1.4, 0.2]] }],
      ['GET', `/v1/models/sizes/versions/${a.tableModel.version}`, undefined],
    ] as const) {
      const res = await as(keyB, method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
      if (path === `/v1/models/shared/versions/${v}`)
        assert.equal(
          bodyText(res.body).replaceAll('shared', '<name>'),
          bodyText(missingModel.body).replaceAll(`never-${run}`, '<name>'),
        );
    }
    // B's jobs cannot name A's model or dataset either.
    const inferA = await as(keyB, 'POST', '/v1/jobs/infer', {
      model: a.model,
      input: { dataset: { id: a.datasetId } },
    });
    assert.equal(inferA.status, 404, JSON.stringify(inferA.body));
    const trainOnA = await as(keyB, 'POST', '/v1/jobs/train', { ...irisTrain('x'), dataset: { id: a.datasetId } });
    assert.equal(trainOnA.status, 404, JSON.stringify(trainOnA.body));
    // Only an admin may name another tenant.
    const header = await as(keyB, 'GET', '/v1/models', undefined, { 'X-Tenant': tenantA });
    assert.equal(header.status, 403, JSON.stringify(header.body));
    assert.equal(header.body.issues?.[0]?.field, 'X-Tenant');
    const own = await as(keyB, 'GET', '/v1/models', undefined, { 'X-Tenant': tenantB });
    assert.equal(own.status, 200, 'naming its own tenant is allowed');
    const bad = await system.fetch('/v1/models', { headers: { 'X-Tenant': '../Other' } });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { issues: { field: string }[] }).issues[0]?.field, 'X-Tenant');
  });

  it("B's listings hold none of A's items", async () => {
    const jobs = await as(keyB, 'GET', '/v1/jobs?pageSize=200');
    assert.equal(jobs.status, 200);
    assert.deepEqual(jobs.body.items, []);
    const models = await as(keyB, 'GET', '/v1/models');
    assert.deepEqual(models.body, []);
    const datasets = await as(keyB, 'GET', '/v1/datasets');
    assert.deepEqual(
      datasets.body.filter((d: { format: string }) => d.format !== 'builtin'),
      [],
    );
    const mine = await as(keyA, 'GET', '/v1/jobs?pageSize=200');
    assert.ok(mine.body.items.length >= 5, JSON.stringify(mine.body));
    assert.ok(mine.body.items.every((j: { tenant: string }) => j.tenant === tenantA));
  });

  it('B uses the same model name for its own model without a clash', async () => {
    const job = await done(keyB, await submit(keyB, '/v1/jobs/train', irisTrain('shared')));
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.equal(job.result.model.version, 1, "B's first version of its own model, whatever A has");
    const mineB = await as(keyB, 'GET', '/v1/models/shared');
    assert.deepEqual(
      mineB.body.versions.map((x: { lineage: { jobId: string } }) => x.lineage.jobId),
      [job.id],
    );
    const mineA = await as(keyA, 'GET', '/v1/models/shared');
    assert.deepEqual(
      mineA.body.versions.map((x: { lineage: { jobId: string } }) => x.lineage.jobId),
      [a.trainId, a.compressId],
      "A's versions: trained, then compressed",
    );
  });

  it('the same Idempotency-Key from A and B makes two jobs; repeated by each, its own', async () => {
    const body = { model: { name: 'shared', version: 1 }, input: { instances: [[5.1, 3.5, 1.4, 0.2]] } };
    const key = { 'Idempotency-Key': `order-${run}` };
    const fromA = await submit(keyA, '/v1/jobs/infer', body, key);
    const fromB = await submit(keyB, '/v1/jobs/infer', body, key);
    assert.notEqual(fromA, fromB);
    assert.equal(await submit(keyA, '/v1/jobs/infer', body, key), fromA);
    assert.equal(await submit(keyB, '/v1/jobs/infer', body, key), fromB);
    assert.equal((await done(keyA, fromA)).tenant, tenantA);
    assert.equal((await done(keyB, fromB)).tenant, tenantB);
    assert.equal((await as(keyB, 'GET', `/v1/jobs/${fromA}`)).status, 404);
  });

  it("an admin lists both tenants with a tenant field, and reads A's model with X-Tenant", async () => {
    const jobs = await system.request('GET', '/v1/jobs?pageSize=200');
    const tenants = new Set(jobs.body.items.map((j: { tenant: string }) => j.tenant));
    assert.ok(tenants.has(tenantA) && tenants.has(tenantB), [...tenants].join());
    const models = await system.request('GET', '/v1/models');
    const shared = models.body.filter((m: { name: string }) => m.name === 'shared');
    assert.deepEqual(shared.map((m: { tenant: string }) => m.tenant).sort(), [tenantA, tenantB]);
    const datasets = await system.request('GET', '/v1/datasets');
    assert.ok(datasets.body.some((d: { id: string; tenant?: string }) => d.id === a.datasetId && d.tenant === tenantA));
    // Its own tenant by default (the config admin's: "default", where A's model is not) ...
    assert.equal((await system.request('GET', `/v1/models/sizes`)).status, 404);
    // ... another tenant's by X-Tenant; a job of any tenant by its id.
    const res = await system.fetch(`/v1/models/sizes`, { headers: { 'X-Tenant': tenantA } });
    assert.equal(res.status, 200);
    const only = await system.fetch('/v1/models', { headers: { 'X-Tenant': tenantB } });
    assert.deepEqual(
      ((await only.json()) as { tenant: string }[]).map((m) => m.tenant),
      [tenantB],
    );
    assert.equal((await system.request('GET', `/v1/jobs/${a.trainId}`)).body.tenant, tenantA);
    const output = await system.fetch(`/v1/jobs/${a.inferInlineId}/output`);
    assert.equal(output.status, 200);
  });

  it("B cannot cancel A's job", async () => {
    const body = { model: a.model, input: { instances: [[5.1, 3.5, 1.4, 0.2]] } };
    const id = await submit(keyA, '/v1/jobs/infer', body);
    const refused = await as(keyB, 'DELETE', `/v1/jobs/${id}`);
    assert.equal(refused.status, 404, JSON.stringify(refused.body));
    assert.equal((await done(keyA, id)).state, 'completed');
  });

  it("stores A's objects under tenants/<A>/ and B's under tenants/<B>/", async () => {
    const files = async (dir: string): Promise<string[]> => {
      const out: string[] = [];
      for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
        if (entry.isFile()) out.push(relative(system.artifactDir, join(entry.parentPath, entry.name)));
      return out;
    };
    const all = await files(system.artifactDir);
    const ofA = all.filter((f) => f.startsWith(`tenants/${tenantA}/`));
    for (const kind of ['models/shared/', 'models/sizes/', `datasets/${a.datasetId}/`])
      assert.ok(
        ofA.some((f) => f.startsWith(`tenants/${tenantA}/${kind}`)),
        `${kind} under tenants/${tenantA}/: ${ofA.join(' ')}`,
      );
    assert.ok(ofA.includes(`tenants/${tenantA}/outputs/${a.inferInlineId}.jsonl`), ofA.join(' '));
    assert.ok(ofA.includes(`tenants/${tenantA}/outputs/${a.inferTableId}.jsonl`), ofA.join(' '));
    assert.ok(all.some((f) => f.startsWith(`tenants/${tenantB}/models/shared/`)));
    // Nothing of a tenant outside tenants/: only system-wide objects (keys, the store's id) are.
    const outside = all.filter((f) => !f.startsWith('tenants/'));
    assert.deepEqual(
      outside.filter((f) => !f.startsWith('secrets/') && f !== 'system/store-id'),
      [],
      outside.join(' '),
    );
  });
});

/** An error body without its request id (each request has its own): what must read the same. */
function bodyText(body: unknown): string {
  if (typeof body !== 'object' || body === null) return JSON.stringify(body);
  const { requestId: _requestId, ...rest } = body as Record<string, unknown>;
  return JSON.stringify(rest);
}
