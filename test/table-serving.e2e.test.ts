import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { preprocessingSpecSchema, type PreprocessingSpec, type TableRecord } from '@tq/contracts';
import { feeds } from '../libs/tables/test/onnx-feeds';
import { records } from '../libs/tables/test/public-tables';
import { TestSystem } from './support/system';

const PENGUINS = records('penguins') as TableRecord[];
const COLUMNS = Object.keys(PENGUINS[0]!);

/**
 * The whole story over HTTP with a real worker: upload penguins as it comes, train on it, predict
 * with records, download model.onnx and get the same answers from raw columns, batch-infer the
 * table, compress and predict again.
 */
describe('a table model end to end (upload → train → records predict → model.onnx → infer → compress)', () => {
  let system: TestSystem;
  let datasetId: string;
  let version: { name: string; version: number };

  const downloadOnnx = async (ref: { name: string; version: number }, file: string) => {
    const res = await system.fetch(`/v1/models/${ref.name}/versions/${ref.version}/${file}`);
    assert.equal(res.status, 200, file);
    return new Uint8Array(await res.arrayBuffer());
  };
  const spec = async (ref: { name: string; version: number }): Promise<PreprocessingSpec> =>
    preprocessingSpecSchema.parse(JSON.parse(Buffer.from(await downloadOnnx(ref, 'preprocessing.json')).toString()));

  before(async () => {
    system = await TestSystem.start({ workers: 1 });
    const form = new FormData();
    form.append('file', new Blob([PENGUINS.map((r) => JSON.stringify(r)).join('\n')]), 'penguins.jsonl');
    form.append('labelColumn', 'Species');
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    const info = (await res.json()) as { id: string; status: string };
    assert.equal(res.status, 201, JSON.stringify(info));
    datasetId = info.id;
    const train = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'penguins',
        layers: [
          { type: 'dense', units: 16, activation: 'relu' },
          { type: 'dense', units: 3, activation: 'softmax' },
        ],
      },
      dataset: { id: datasetId },
      fit: { epochs: 30, batchSize: 32, learningRate: 0.02, validationSplit: 0.2, seed: 7 },
    });
    assert.equal(train.status, 202, JSON.stringify(train.body));
    const job = await system.waitForJob(train.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    version = job.result.model;
  });
  after(async () => {
    await system.stop();
  });

  it('predicts records, and the downloaded model.onnx answers the same on raw columns (1e-5)', async () => {
    const sent = [PENGUINS[0]!, { ...PENGUINS[300]!, Island: 'Atlantis', Sex: null }];
    const res = await system.request('POST', `/v1/models/penguins/versions/${version.version}/predict`, {
      records: sent,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.engine, 'onnxruntime');
    assert.deepEqual(res.body.unknownCategories, { Island: 1 });
    assert.equal(res.body.predictions[0].label, 'Adelie');
    const session = await ort.InferenceSession.create(await downloadOnnx(version, 'model.onnx'));
    const rows = sent.map((r) => COLUMNS.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(await spec(version), COLUMNS, rows))).output!.data as Float32Array;
    await session.release();
    (res.body.predictions as Array<{ scores: number[] }>).forEach((p, i) =>
      p.scores.forEach((s, k) => assert.ok(Math.abs(s - out[i * 3 + k]!) <= 1e-5, `record ${i} class ${k}`)),
    );
  });

  it('batch-infers the uploaded table in row order, and compresses to int8 keeping the pipeline', async () => {
    const infer = await system.request('POST', '/v1/jobs/infer', {
      model: version,
      input: { dataset: { id: datasetId } },
    });
    assert.equal(infer.status, 202, JSON.stringify(infer.body));
    assert.equal((await system.waitForJob(infer.body.id)).state, 'completed');
    const lines = String((await system.request('GET', `/v1/jobs/${infer.body.id}/output`)).body)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { label: string });
    assert.equal(lines.length, PENGUINS.length);
    const right = lines.filter((l, i) => l.label === PENGUINS[i]!.Species).length;
    assert.ok(right / lines.length >= 0.95, `${right}/${lines.length} in row order`);

    const compress = await system.request('POST', '/v1/jobs/compress', {
      source: version,
      quantize: { dtype: 'uint8' },
    });
    const done = await system.waitForJob(compress.body.id);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    const small = done.result.model as { name: string; version: number };
    const meta = (await system.request('GET', `/v1/models/${small.name}/versions/${small.version}`)).body;
    assert.deepEqual(
      meta.inputColumns,
      (await spec(version)).steps.map((s) => s.name),
    );
    for (const file of ['preprocessing.json', 'model.int8.onnx', 'network.int8.onnx'])
      assert.ok(meta.artifacts[file] > 0, file);
    const res = await system.request('POST', `/v1/models/${small.name}/versions/${small.version}/predict`, {
      records: PENGUINS.slice(0, 20),
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const agree = (res.body.predictions as Array<{ label: string }>).filter((p, i) => p.label === PENGUINS[i]!.Species);
    assert.ok(agree.length >= 19, `${agree.length}/20`);
  });
});
