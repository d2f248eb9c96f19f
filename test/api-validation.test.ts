import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Redis from 'ioredis';
import ts from 'typescript';
import type { z } from 'zod';
import {
  compressRequestSchema,
  inferRequestSchema,
  jobListQuerySchema,
  localJobMeta,
  predictRequestSchema,
  explainRequestSchema,
  trainRequestSchema,
} from '@tq/contracts';
import { profileDatasetJob } from '@tq/jobs';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { DEFAULT_TABLE_LIMITS } from '@tq/tables';
import { TestSystem } from './support/system';

const IRIS_MODEL = {
  name: 'iris',
  layers: [
    { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
};
const MODEL_JSON = JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [] });
type OpenApiOperation = {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: {
    content: Record<string, { schema?: { example?: unknown }; examples?: Record<string, { value: unknown }> }>;
  };
  responses: Record<string, { content?: Record<string, { schema?: object }> }>;
};
type OpenApiDoc = { paths: Record<string, Record<string, OpenApiOperation>> };
/** Compiles only when every operation's 2xx body type is not never; the error names the operations. */
const NO_NEVER_CHECK = `
import type { operations } from './api';
type Ok<O> = O extends { responses: infer R } ? R[Extract<keyof R, 200 | 201 | 202>] : never;
type Body<O> = Ok<O> extends { content: infer C } ? C[keyof C] : never;
type NeverBodies = { [K in keyof operations]: [Body<operations[K]>] extends [never] ? K : never }[keyof operations];
export const check: [NeverBodies] extends [never] ? true : NeverBodies = true;
`;
const BROKEN_DATASET = '11111111-1111-4111-8111-111111111111';
const train = (patch: Record<string, unknown> = {}) => ({
  model: IRIS_MODEL,
  dataset: { builtin: 'iris' },
  fit: { epochs: 1 },
  ...patch,
});

/** Bad input gets a 4xx that names the field and the reason, and nothing is enqueued. */
describe('API validation (no workers: nothing may reach a queue)', () => {
  let system: TestSystem;
  before(async () => {
    // The default ./.data artifact folder (as `npm start` runs), and budgets small enough to reach.
    system = await TestSystem.start({
      workers: 0,
      defaultArtifactDir: true,
      env: {
        MAX_UPLOAD_BYTES: '2048',
        MAX_TRAIN_WORK: '1000',
        MAX_INFER_INSTANCES: '3',
        MAX_JSON_BODY_BYTES: '4096',
        JOB_HISTORY_AGE_SECONDS: '3600',
      },
    });
    // A registered 4-feature model, written straight into the artifact folder.
    const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant('default'));
    await registry.register(
      'iris',
      {
        inputShape: [4],
        featureCount: 4,
        classes: ['a', 'b', 'c'],
        lineage: { kind: 'trained' },
        weightDtype: 'float32',
      },
      (out) => out.put('model.json', MODEL_JSON),
    );
    // Two broken entries: metadata and info that exist but do not parse.
    await registry.register(
      'broken',
      { inputShape: [4], featureCount: 4, classes: [], lineage: { kind: 'trained' }, weightDtype: 'float32' },
      async () => {},
    );
    await registry.store.blobs.put(
      registry.store.modelKey({ name: 'broken', version: 1 }, 'metadata.json'),
      '{ not json',
    );
    await registry.store.blobs.put(registry.store.datasetKey(BROKEN_DATASET, 'info.json'), '{ not json');
  });
  after(() => system.stop());

  const expectIssue = async (path: string, body: unknown, status: number, field: string, reason: RegExp) => {
    const res = await system.request('POST', path, body);
    assert.equal(res.status, status, JSON.stringify(res.body));
    const issue = res.body.issues?.find((i: { field: string }) => i.field === field);
    assert.ok(issue, `no issue for ${field} in ${JSON.stringify(res.body)}`);
    assert.match(issue.reason, reason);
  };

  it('rejects an unknown layer type', () =>
    expectIssue(
      '/v1/jobs/train',
      train({ model: { name: 'x', layers: [{ type: 'lstm', units: 3, inputShape: [4] }] } }),
      400,
      'model.layers.0.type',
      /dense|expected|Invalid/i,
    ));
  it('rejects task regression and column overrides on a built-in dataset, naming them', async () => {
    await expectIssue('/v1/jobs/train', train({ task: 'regression' }), 400, 'task', /iris.*classification/);
    await expectIssue('/v1/jobs/train', train({ columns: { a: 'ignore' } }), 400, 'columns', /uploaded table/);
  });
  it('rejects fit.prune outside [0, 1) and a polynomial one under early stopping, naming the field', async () => {
    await expectIssue('/v1/jobs/train', train({ fit: { prune: { sparsity: 1 } } }), 400, 'fit.prune.sparsity', /1/);
    await expectIssue(
      '/v1/jobs/train',
      train({ fit: { prune: { sparsity: 0.5, schedule: 'polynomial' }, earlyStopping: { patience: 2 } } }),
      400,
      'fit.earlyStopping',
      /polynomial/,
    );
  });
  it('rejects negative epochs', () =>
    expectIssue('/v1/jobs/train', train({ fit: { epochs: -1 } }), 400, 'fit.epochs', />=1|too small/i));
  it('rejects an unsafe model name', () =>
    expectIssue('/v1/jobs/train', train({ model: { ...IRIS_MODEL, name: '../etc' } }), 400, 'model.name', /a-z/));
  it('rejects an unknown dataset with 404', () =>
    expectIssue(
      '/v1/jobs/train',
      train({ dataset: { id: '00000000-0000-4000-8000-000000000000' } }),
      404,
      'dataset.id',
      /does not exist/,
    ));
  it('rejects a first layer that does not match the dataset', () =>
    expectIssue(
      '/v1/jobs/train',
      train({ model: { name: 'x', layers: [{ type: 'dense', units: 3, activation: 'softmax', inputShape: [5] }] } }),
      400,
      'model.layers.0.inputShape',
      /4 features/,
    ));
  it('rejects an unknown model with 404', () =>
    expectIssue(
      '/v1/jobs/infer',
      { model: { name: 'nope', version: 1 }, input: { instances: [[1, 2, 3, 4]] } },
      404,
      'model',
      /has no version 1/,
    ));
  it('rejects a reshape whose target does not hold its input, as the worker would', () =>
    expectIssue(
      '/v1/jobs/train',
      train({
        model: {
          name: 'x',
          layers: [
            { type: 'dense', units: 6, inputShape: [4] },
            { type: 'reshape', targetShape: [4, 2] },
            { type: 'flatten' },
            { type: 'dense', units: 3, activation: 'softmax' },
          ],
        },
      }),
      400,
      'model.layers.1.targetShape',
      /holds 8 values but its input \[6\] holds 6/,
    ));
  it('rejects a model that does not end in softmax, as the worker would', () =>
    expectIssue(
      '/v1/jobs/train',
      train({ model: { name: 'x', layers: [{ type: 'dense', units: 3, inputShape: [4] }] } }),
      400,
      'model.layers.0.activation',
      /softmax/,
    ));
  it('refuses a model over MAX_MODEL_PARAMS with 413, naming the figure and the variable', () =>
    expectIssue(
      '/v1/jobs/train',
      {
        model: {
          name: 'x',
          layers: [
            { type: 'dense', units: 65536, inputShape: [784] },
            { type: 'dense', units: 10, activation: 'softmax' },
          ],
        },
        dataset: { builtin: 'mnist' },
        fit: { epochs: 1 },
      },
      413,
      'model.layers',
      /52101130 parameters exceed the limit of 50000000 \(MAX_MODEL_PARAMS\)/,
    ));
  it('refuses epochs × rows over MAX_TRAIN_WORK with 413', () =>
    expectIssue(
      '/v1/jobs/train',
      train({ fit: { epochs: 7 } }),
      413,
      'fit.epochs',
      /7 epochs × 150 rows = 1050 .*limit of 1000 \(MAX_TRAIN_WORK\)/,
    ));
  it('refuses more inline instances than MAX_INFER_INSTANCES with 413', () =>
    expectIssue(
      '/v1/jobs/infer',
      {
        model: { name: 'iris', version: 1 },
        input: {
          instances: [
            [1, 2, 3, 4],
            [1, 2, 3, 4],
            [1, 2, 3, 4],
            [1, 2, 3, 4],
          ],
        },
      },
      413,
      'input.instances',
      /4 rows exceed the limit of 3 \(MAX_INFER_INSTANCES\)/,
    ));
  it('refuses a JSON body over MAX_JSON_BODY_BYTES with 413 naming (body), the limit and the variable', () =>
    expectIssue(
      '/v1/jobs/infer',
      { model: { name: 'iris', version: 1 }, input: { instances: Array.from({ length: 1000 }, () => [1, 2, 3, 4]) } },
      413,
      '(body)',
      /limit of 4096 bytes \(MAX_JSON_BODY_BYTES\)/,
    ));
  it('answers 404 naming "file" for names an object inherits, and serves a listed artifact from ./.data', async () => {
    for (const file of ['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const res = await system.request('GET', `/v1/models/iris/versions/1/${file}`);
      assert.equal(res.status, 404, `${file}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.issues?.[0]?.field, 'file', file);
    }
    const res = await system.fetch(`/v1/models/iris/versions/1/model.json`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/json');
    assert.equal(await res.text(), MODEL_JSON);
  });
  it('answers 500, not 404, for metadata that exists but is corrupt', async () => {
    assert.equal((await system.request('GET', '/v1/models/broken/versions/1')).status, 500);
    assert.equal(
      (
        await system.request('POST', '/v1/jobs/compress', {
          source: { name: 'broken', version: 1 },
          quantize: { dtype: 'uint8' },
        })
      ).status,
      500,
    );
    assert.equal((await system.request('GET', `/v1/datasets/${BROKEN_DATASET}`)).status, 500);
    assert.equal(
      (await system.request('POST', '/v1/jobs/train', train({ dataset: { id: BROKEN_DATASET } }))).status,
      500,
    );
    const missing = await system.request('GET', '/v1/datasets/22222222-2222-4222-8222-222222222222');
    assert.deepEqual([missing.status, missing.body.issues?.[0]?.field], [404, 'id']);
    const version = await system.request('GET', '/v1/models/iris/versions/9');
    assert.deepEqual([version.status, version.body.issues?.[0]?.field], [404, 'version']);
  });
  it('rejects rows with the wrong feature count', () =>
    expectIssue(
      '/v1/jobs/infer',
      {
        model: { name: 'iris', version: 1 },
        input: {
          instances: [
            [1, 2, 3, 4],
            [1, 2, 3],
          ],
        },
      },
      400,
      'input.instances.1',
      /takes 4 features/,
    ));
  it('rejects non-numeric cells in instances', () =>
    expectIssue(
      '/v1/jobs/infer',
      { model: { name: 'iris', version: 1 }, input: { instances: [[1, 2, 'x', 4]] } },
      400,
      'input.instances.0.2',
      /number/,
    ));
  it('rejects a compress request without a compression', () =>
    expectIssue('/v1/jobs/compress', { source: { name: 'iris', version: 1 } }, 400, 'steps', /at least one/));
  describe('compress steps and gates', () => {
    const GONE_DATASET = '22222222-2222-4222-8222-222222222222';
    before(async () => {
      // Versions whose lineage names their training data: a built-in, and an upload since deleted.
      const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant('default'));
      for (const [name, dataset] of [
        ['iris-data', { builtin: 'iris' }],
        ['iris-gone', { id: GONE_DATASET }],
      ] as const)
        await registry.register(
          name,
          {
            inputShape: [4],
            featureCount: 4,
            classes: ['a', 'b', 'c'],
            lineage: { kind: 'trained', dataset, training: { validationSplit: 0.2, seed: 1 } },
            weightDtype: 'float32',
          },
          (out) => out.put('model.json', MODEL_JSON),
        );
    });
    const compress = (patch: Record<string, unknown>, name = 'iris-data') => ({
      source: { name, version: 1 },
      ...patch,
    });
    const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
      ['an empty step list', { steps: [] }, 'steps', /at least one step/],
      ['sparsity 1', { steps: [{ prune: { sparsity: 1 } }] }, 'steps.0.prune.sparsity', /1/],
      ['a negative sparsity', { steps: [{ prune: { sparsity: -0.1 } }] }, 'steps.0.prune.sparsity', /0/],
      [
        'a repeated prune',
        { steps: [{ prune: { sparsity: 0.5 } }, { prune: { sparsity: 0.6 } }] },
        'steps.1',
        /cannot repeat/,
      ],
      [
        'quantize before prune',
        { steps: [{ quantize: { dtype: 'uint8' } }, { prune: { sparsity: 0.5 } }] },
        'steps.0',
        /last step/,
      ],
      [
        'a polynomial schedule without fine-tuning',
        { steps: [{ prune: { sparsity: 0.5, schedule: 'polynomial' } }] },
        'steps.0.prune.schedule',
        /fineTuneEpochs/,
      ],
      ['an empty gate', { steps: [{ prune: { sparsity: 0.5 } }], gate: {} }, 'gate', /bound/],
      [
        'a data-parallel structured prune',
        {
          steps: [{ prune: { sparsity: 0.5, structured: true, fineTuneEpochs: 1, distributed: { workers: 2 } } }],
        },
        'steps.0.prune.distributed',
        /structured/,
      ],
      [
        'a data-parallel prune without fine-tuning',
        { steps: [{ prune: { sparsity: 0.5, distributed: { workers: 2 } } }] },
        'steps.0.prune.distributed',
        /fineTuneEpochs/,
      ],
      [
        'a data-parallel prune after distill',
        {
          steps: [
            { distill: { student: { width: 0.5 } } },
            { prune: { sparsity: 0.5, fineTuneEpochs: 1, distributed: { workers: 2 } } },
          ],
        },
        'steps.1.prune.distributed',
        /before distill/,
      ],
      [
        'steps and quantize both',
        { steps: [{ prune: { sparsity: 0.5 } }], quantize: { dtype: 'uint8' } },
        'quantize',
        /not both/,
      ],
      ['a step the platform lacks', { steps: [{ sparsify: { width: 0.5 } }] }, 'steps.0', /./],
      [
        'a student whose output differs from the teacher’s',
        {
          steps: [
            {
              distill: {
                student: {
                  layers: [
                    { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
                    { type: 'dense', units: 2, activation: 'softmax' },
                  ],
                },
              },
            },
          ],
        },
        'steps.0.distill.student.layers.1',
        /outputs \[2\], the teacher \[3\]/,
      ],
      [
        'a gate on a metric a classifier has not',
        { steps: [{ prune: { sparsity: 0.5 } }], gate: { maxR2Drop: 0.01 } },
        'gate.maxR2Drop',
        /classification model: use maxAccuracyDrop/,
      ],
    ];
    for (const [what, patch, field, reason] of cases)
      it(`rejects ${what}, naming ${field}`, () =>
        expectIssue('/v1/jobs/compress', compress(patch), 400, field, reason));
    it('rejects steps on a source that records no training data, naming source', () =>
      expectIssue(
        '/v1/jobs/compress',
        compress({ steps: [{ prune: { sparsity: 0.5 } }] }, 'iris'),
        400,
        'source',
        /records no training data/,
      ));
    it('answers 410 naming source when the dataset the source was trained on is gone', () =>
      expectIssue(
        '/v1/jobs/compress',
        compress({ steps: [{ prune: { sparsity: 0.5 } }] }, 'iris-gone'),
        410,
        'source',
        new RegExp(`${GONE_DATASET}.*is gone`),
      ));
  });
  it('rejects unknown fields', async () => {
    const res = await system.request('POST', '/v1/jobs/train', { ...train(), epochs: 3 });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /epochs/);
  });

  const upload = async (name: string, content: string, fields: Record<string, string>) => {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    return {
      status: res.status,
      body: (await res.json()) as { issues?: { field: string; reason: string }[]; message: string; id?: string },
    };
  };

  /** A CSV stored and profiled in-process (the profile-dataset job's body), as a worker would. */
  const storedTable = async (csv: string, labelColumn: string): Promise<string> => {
    const datasets = new DatasetStore(new ArtifactStore(system.artifactDir).forTenant('default'));
    const info = await datasets.create({ name: 't.csv', format: 'csv', labelColumn }, Readable.from([csv]), 1 << 20);
    const hooks = {
      jobId: 'local',
      meta: localJobMeta(),
      signal: new AbortController().signal,
      onProgress: async () => undefined,
      log: () => undefined,
    };
    const job = { datasetId: info.id, format: 'csv' as const, labelColumn };
    await profileDatasetJob(job, { datasets, limits: DEFAULT_TABLE_LIMITS }, hooks);
    return info.id;
  };

  it('rejects upload names whose extension an object inherits, naming "file"', async () => {
    for (const name of ['data.constructor', 'data.__proto__', 'data.toString', 'data.hasOwnProperty']) {
      const res = await upload(name, 'a,label\n1,x\n', { labelColumn: 'label' });
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.issues?.[0]?.field, 'file', name);
      assert.match(res.body.issues?.[0]?.reason ?? '', /is not \.csv, \.tsv, \.jsonl, \.ndjson or \.json/, name);
    }
  });
  it('rejects an upload over the configured limit with 413', async () => {
    const res = await upload('big.csv', `a,label\n${'1,x\n'.repeat(1000)}`, { labelColumn: 'label' });
    assert.equal(res.status, 413);
    assert.match(res.body.message, /file/);
  });
  it('rejects bad form fields with 400 naming each, and a body without a file naming "file"', async () => {
    const bad = await upload('t.csv', 'a,label\n1,x\n', { labelColumn: 'label', task: 'guess', columns: '{"a":' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.deepEqual(bad.body.issues?.map((i) => i.field).sort(), ['columns', 'task']);
    for (const name of ['constructor', '__proto__']) {
      const inherited = await upload('t.csv', 'a,label\n1,x\n', { [name]: 'x' });
      assert.equal(inherited.status, 400, `${name}: ${JSON.stringify(inherited.body)}`);
      assert.match(inherited.body.message, new RegExp(name), name);
    }
    const kinds = await upload('t.csv', 'a,label\n1,x\n', { columns: '{"a":"float"}' });
    assert.deepEqual([kinds.status, kinds.body.issues?.[0]?.field], [400, 'columns.a']);
    const form = new FormData();
    form.append('labelColumn', 'label');
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    const body = (await res.json()) as { issues?: { field: string }[] };
    assert.deepEqual([res.status, body.issues?.[0]?.field], [400, 'file']);
    const stored = await readdir(join(system.tenantDir(), 'datasets'));
    assert.deepEqual(stored, [BROKEN_DATASET], 'no rejected upload was stored');
  });
  // No worker runs here: these datasets are profiled in-process, straight into the artifact folder.
  // (They rely on the submission checks of table datasets, helper B's part of issue 8.)
  it('rejects fine-tuning a version whose class count differs from the dataset, naming model.from', async () => {
    const two = await storedTable('a,b,c,d,label\n1,2,3,4,yes\n5,6,7,8,no\n1,3,5,7,yes\n', 'label');
    await expectIssue(
      '/v1/jobs/train',
      train({ model: { name: 'tuned', from: { name: 'iris', version: 1 } }, dataset: { id: two } }),
      400,
      'model.from',
      /outputs 3 values .* 2 classes/,
    );
  });
  it('rejects a validationSplit that leaves no training rows of an uploaded dataset', async () => {
    const tiny = await storedTable('a,b,label\n1,2,cat\n3,4,dog\n', 'label');
    const layers = [{ type: 'dense', units: 2, activation: 'softmax', inputShape: [2] }];
    await expectIssue(
      '/v1/jobs/train',
      train({ model: { name: 'x', layers }, dataset: { id: tiny }, fit: { epochs: 1, validationSplit: 0.6 } }),
      400,
      'fit.validationSplit',
      /no training rows out of 2/,
    );
  });
  it("checks a distributed run's early stopping monitor like a local one's", () =>
    expectIssue(
      '/v1/jobs/train',
      train({
        fit: { epochs: 1, validationSplit: 0, earlyStopping: { monitor: 'valAccuracy' } },
        distributed: { workers: 2 },
      }),
      400,
      'fit.earlyStopping.monitor',
      /not measured in this run/,
    ));
  it('answers 404 for an unknown job and nothing was enqueued by the rejected requests', async () => {
    assert.equal((await system.request('GET', '/v1/jobs/train-00000000-0000-4000-8000-000000000000')).status, 404);
    const listed = await system.request('GET', '/v1/jobs');
    assert.deepEqual(listed.body.items, []);
  });
  it('returns the same job for a repeated Idempotency-Key with an equal body, 409 for another body', async () => {
    const post = (body: unknown) =>
      system
        .fetch(`/v1/jobs/train`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'abc-1' },
          body: JSON.stringify(body),
        })
        .then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { id: string; state: string; issues?: { field: string }[] },
        }));
    const first = await post(train());
    // The same request spelled differently (key order, a default written out) is the same body.
    const second = await post({
      fit: { validationSplit: 0.1, epochs: 1 },
      dataset: { builtin: 'iris' },
      model: IRIS_MODEL,
    });
    assert.deepEqual([second.status, second.body.id, second.body.state], [202, first.body.id, 'waiting']);
    const other = await post(train({ fit: { epochs: 2 } }));
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.equal(other.body.issues?.[0]?.field, 'Idempotency-Key');
    assert.equal((await system.request('GET', '/v1/jobs?type=train')).body.items.length, 1);
    // The key lives as long as its job can be asked about: JOB_HISTORY_AGE_SECONDS, like the tombstone.
    const redis = new Redis(system.redisUrl);
    const ttl = await redis.ttl(`${system.prefix}:tq-idem:${first.body.id}`).finally(() => redis.disconnect());
    assert.ok(ttl > 0 && ttl <= 3600, `key TTL ${ttl} s`);
    await system.request('DELETE', `/v1/jobs/${first.body.id}`);
    const output = await system.request('GET', `/v1/jobs/${first.body.id}/output`);
    assert.deepEqual([output.status, output.body.issues?.[0]?.field], [404, 'id'], 'a train job has no output');
    const long = await system.fetch(`/v1/jobs/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k'.repeat(256) },
      body: JSON.stringify(train()),
    });
    assert.equal(long.status, 400);
    assert.equal(((await long.json()) as { issues: { field: string }[] }).issues[0]?.field, 'Idempotency-Key');
  });
  it('accepts early stopping in a distributed run (the aggregator judges the epochs)', async () => {
    const body = train({
      fit: { epochs: 5, earlyStopping: { monitor: 'valLoss', patience: 2 } },
      distributed: { workers: 2 },
    });
    const res = await system.request('POST', '/v1/jobs/train', body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await system.request('DELETE', `/v1/jobs/${res.body.id}`);
  });
  it('serves an OpenAPI document whose request bodies come from the contracts', async () => {
    const doc = (await system.request('GET', '/docs-json')).body;
    const body = doc.paths['/v1/jobs/train'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required.sort(), ['dataset', 'model']);
    assert.ok(body.properties.fit.properties.epochs, 'fit.epochs is documented');
    assert.ok(doc.paths['/v1/models/{name}/versions/{version}/predict'] && doc.paths['/v1/datasets']);
  });
  it('documents a typed 2xx response for every operation, an optional Idempotency-Key, the list query, valid examples', async () => {
    const doc = (await system.request('GET', '/docs-json')).body as OpenApiDoc;
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ at: `${method} ${path}`, op })),
    );
    assert.ok(operations.length >= 18, `${operations.length} operations`);
    for (const { at, op } of operations) {
      const ok = Object.entries(op.responses).filter(([status]) => status.startsWith('2'));
      assert.ok(ok.length > 0, `${at}: no 2xx response`);
      for (const [status, res] of ok) {
        const schemas = Object.values(res.content ?? {}).map((c) => c.schema);
        assert.ok(
          schemas.length > 0 && schemas.every((x) => x && Object.keys(x).length > 0),
          `${at} ${status}: no response schema`,
        );
      }
    }
    for (const path of ['/v1/jobs/train', '/v1/jobs/compress', '/v1/jobs/infer']) {
      const header =
        doc.paths[path]!.post!.parameters?.filter(
          (p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key',
        ) ?? [];
      assert.equal(header.length, 1, `${path}: one Idempotency-Key header`);
      assert.equal(header[0]!.required, false, `${path}: the header is optional`);
      const requestId = doc.paths[path]!.post!.parameters?.filter(
        (p) => p.in === 'header' && p.name === 'X-Request-Id',
      );
      assert.equal(requestId?.length, 1, `${path}: X-Request-Id is documented once`);
    }
    const required = operations.flatMap(({ at, op }) =>
      (op.parameters ?? []).filter((p) => p.in === 'header' && p.required !== false).map((p) => `${at} ${p.name}`),
    );
    assert.deepEqual(required, [], 'no header is required');
    const idempotency = doc.paths['/v1/jobs/train']!.post!.parameters?.find((p) => p.name === 'Idempotency-Key');
    assert.match(String((idempotency as { description?: string }).description), /JOB_HISTORY_AGE_SECONDS/);
    const query = doc.paths['/v1/jobs']!.get!.parameters?.filter((p) => p.in === 'query')
      .map((p) => p.name)
      .sort();
    assert.deepEqual(query, Object.keys(jobListQuerySchema.shape).sort());
    const examples: [string, string, z.ZodType][] = [
      ['/v1/jobs/train', 'post', trainRequestSchema],
      ['/v1/jobs/compress', 'post', compressRequestSchema],
      ['/v1/jobs/infer', 'post', inferRequestSchema],
      ['/v1/models/{name}/versions/{version}/predict', 'post', predictRequestSchema],
      ['/v1/models/{name}/versions/{version}/explain', 'post', explainRequestSchema],
    ];
    for (const [path, method, schema] of examples) {
      const example = doc.paths[path]![method]!.requestBody?.content['application/json']?.schema?.example;
      assert.ok(example, `${path}: an example`);
      assert.ok(schema.safeParse(example).success, `${path}: the example is a valid request`);
    }
    const predict =
      doc.paths['/v1/models/{name}/versions/{version}/predict']!.post!.requestBody?.content['application/json']
        ?.examples;
    assert.deepEqual(Object.keys(predict ?? {}).sort(), ['instances', 'records'], 'predict: records are shown');
    for (const path of [
      '/v1/models/{name}/versions/{version}/predict',
      '/v1/models/{name}/aliases/{alias}/predict',
      '/v1/models/{ref}/predict',
    ]) {
      const op = doc.paths[path]!.post! as { requestBody?: { content: Record<string, { schema?: object }> } };
      assert.deepEqual(
        op.requestBody?.content['application/octet-stream']?.schema,
        { type: 'string', format: 'binary' },
        `${path}: binary rows are documented`,
      );
      assert.equal('x-tq-binary-rows' in op, false, `${path}: the marker is not published`);
    }
    const explainBody = doc.paths['/v1/models/{name}/versions/{version}/explain']!.post!.requestBody?.content;
    assert.deepEqual(Object.keys(explainBody ?? {}), ['application/json'], 'explain takes JSON only');
    for (const [name, { value }] of Object.entries(predict ?? {}))
      assert.ok(predictRequestSchema.safeParse(value).success, `predict example ${name} is a valid request`);
    const explain =
      doc.paths['/v1/models/{name}/versions/{version}/explain']!.post!.requestBody?.content['application/json']
        ?.examples;
    assert.deepEqual(Object.keys(explain ?? {}).sort(), ['instances', 'records'], 'explain: records are shown');
    for (const [name, { value }] of Object.entries(explain ?? {}))
      assert.ok(explainRequestSchema.safeParse(value).success, `explain example ${name} is a valid request`);
  });
  it('types no response as never in a client generated with openapi-typescript', async () => {
    const doc = (await system.request('GET', '/docs-json')).body as OpenApiDoc;
    const { default: openapiTS } = await import('openapi-typescript');
    const dir = await mkdtemp(join(tmpdir(), 'tq-openapi-'));
    try {
      await writeFile(join(dir, 'api.d.ts'), await openapiTS(doc as never));
      await writeFile(join(dir, 'check.ts'), NO_NEVER_CHECK);
      const program = ts.createProgram([join(dir, 'check.ts')], { strict: true, noEmit: true, skipLibCheck: true });
      const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      assert.deepEqual(errors, [], 'operations whose 2xx body is never');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it('rejects a bad list query', () =>
    system.request('GET', '/v1/jobs?state=sleeping').then((res) => assert.equal(res.status, 400)));
});
