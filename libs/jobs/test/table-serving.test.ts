import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {
  CancelledError,
  FieldError,
  localJobMeta,
  type ClassPrediction,
  type InferProgress,
  type JobHooks,
  type ModelVersionMeta,
  type TableRecord,
  type ValuePrediction,
} from '@tq/contracts';
import { compressJob, inferJob, predictVersion } from '@tq/jobs';
import {
  decodeModel,
  exportPipelineOnnx,
  InferenceEngine,
  initBackend,
  writeModelArtifacts,
  type BackendInfo,
} from '@tq/ml';
import { ArtifactStore, DatasetStore, fileSaveHandler, JobInputStore, ModelRegistry } from '@tq/storage';
import { decodeRegression, encodeRecords, profileTable, readTable } from '@tq/tables';
import { feeds } from '../../tables/test/onnx-feeds';
import { fitTableModel, networkOutputs, type TableModel } from './table-models';

const fieldError = (field: string) => (err: unknown) => err instanceof FieldError && err.field === field;

/** Serving a model trained on a table: predict with records, infer jobs on uploaded tables, compress. */
describe('table models served (records predict, infer on a table, compress)', () => {
  let root: string;
  let store: ArtifactStore;
  let registry: ModelRegistry;
  let datasets: DatasetStore;
  let engine: InferenceEngine;
  let backend: BackendInfo;
  let penguins: TableModel;
  let cars: TableModel;
  let penguinsMeta: ModelVersionMeta;
  let carsMeta: ModelVersionMeta;
  const hooks = <P>(jobId: string): JobHooks<P> => ({
    jobId,
    meta: localJobMeta(),
    signal: new AbortController().signal,
    onProgress: async () => undefined,
    log: () => undefined,
  });

  /** A version as the train job registers one for a table: artifacts, preprocessing.json, task, columns. */
  async function register(name: string, t: TableModel, datasetId: string): Promise<ModelVersionMeta> {
    const target = t.spec.target;
    return registry.register(
      name,
      {
        inputShape: [t.spec.width],
        featureCount: t.spec.width,
        classes: target.task === 'classification' ? target.classes : [],
        task: target.task,
        inputColumns: t.spec.steps.map((s) => s.name),
        lineage: { kind: 'trained', dataset: { id: datasetId } },
        weightDtype: 'float32',
      },
      async (dir) => {
        await writeModelArtifacts(t.model, dir, () => undefined, { preprocessing: t.spec });
      },
    );
  }

  /** An uploaded table, stored and profiled through the dataset store as the upload path does it. */
  async function upload(format: 'csv' | 'jsonl', text: string): Promise<string> {
    const bytes = () => Readable.from([Buffer.from(text)]);
    const info = await datasets.create({ name: `table.${format}`, format }, bytes(), 1 << 30);
    const profile = await profileTable(await readTable(bytes(), format));
    const columns = profile.columns.map((c) => c.name);
    await datasets.markReady(info.id, { profile, rows: profile.rows, featureColumns: columns, classes: [] });
    return info.id;
  }

  const jsonl = (records: TableRecord[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
  const ref = (m: ModelVersionMeta) => ({ name: m.name, version: m.version });

  before(async () => {
    backend = await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-table-serving-'));
    store = new ArtifactStore(root);
    registry = new ModelRegistry(store);
    datasets = new DatasetStore(store);
    engine = new InferenceEngine({ registry, cacheSize: 4 });
    penguins = await fitTableModel('penguins');
    cars = await fitTableModel('cars');
    penguinsMeta = await register('penguins', penguins, await upload('jsonl', jsonl(penguins.records)));
    carsMeta = await register('cars', cars, await upload('jsonl', jsonl(cars.records)));
  });
  after(async () => {
    await engine.close();
    penguins.model.dispose();
    cars.model.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('registers model.onnx (raw columns) and network.onnx (features) beside preprocessing.json', () => {
    for (const file of ['model.json', 'model.onnx', 'network.onnx', 'preprocessing.json'])
      assert.ok(penguinsMeta.artifacts[file]! > 0, file);
  });

  it('the engine never runs a pipeline graph on features: a table version without network.onnx runs on tfjs', async () => {
    const meta = await registry.register(
      'no-network',
      { ...penguinsMeta, lineage: { kind: 'trained' } },
      async (dir) => {
        await penguins.model.save(fileSaveHandler(dir));
        await writeFile(join(dir, 'preprocessing.json'), JSON.stringify(penguins.spec));
        await writeFile(join(dir, 'model.onnx'), exportPipelineOnnx(penguins.model, penguins.spec));
      },
    );
    assert.ok(meta.artifacts['model.onnx']! > 0 && !('network.onnx' in meta.artifacts));
    const res = await predictVersion(engine, meta, { records: penguins.records.slice(0, 3) });
    assert.equal(res.engine, 'tfjs');
    const old = await predictVersion(engine, penguinsMeta, { records: penguins.records.slice(0, 3) });
    res.predictions.forEach((p, i) =>
      (p as ClassPrediction).scores.forEach((s, k) =>
        assert.ok(Math.abs(s - (old.predictions[i] as ClassPrediction).scores[k]!) <= 1e-5),
      ),
    );
  });

  it('predicts records: names and probabilities equal to the TS path and to the downloaded model.onnx', async () => {
    const records = [penguins.records[0]!, { ...penguins.records[200]!, Island: 'Atlantis', Sex: null }];
    const res = await predictVersion(engine, penguinsMeta, { records: records });
    assert.equal(res.engine, 'onnxruntime', 'network.onnx runs on features');
    assert.deepEqual(res.unknownCategories, { Island: 1 });
    const { features } = encodeRecords(penguins.spec, records);
    const want = networkOutputs(penguins.model, features, 2, penguins.spec.width);
    const got = res.predictions as ClassPrediction[];
    assert.equal(got[0]!.label, 'Adelie');
    got.forEach((p, i) =>
      p.scores.forEach((s, k) => assert.ok(Math.abs(s - want[i * 3 + k]!) <= 1e-5, `record ${i} class ${k}`)),
    );
    // The download: a consumer feeding the same raw columns to onnxruntime gets the same answers.
    const session = await ort.InferenceSession.create(
      await readFile(registry.artifactPath(ref(penguinsMeta), 'model.onnx')),
    );
    const rows = records.map((r) => penguins.columns.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(penguins.spec, penguins.columns, rows))).output!.data as Float32Array;
    await session.release();
    got.forEach((p, i) => p.scores.forEach((s, k) => assert.ok(Math.abs(s - out[i * 3 + k]!) <= 1e-5)));
  });

  it('refuses bad records naming records.<i>.<column>, and records sent to a model without a table', async () => {
    const good = penguins.records[0]!;
    await assert.rejects(
      predictVersion(engine, penguinsMeta, { records: [{ ...good, Wings: 2 }] }),
      fieldError('records.0.Wings'),
    );
    const { Sex: _, ...noSex } = good;
    await assert.rejects(predictVersion(engine, penguinsMeta, { records: [good, noSex] }), fieldError('records.1.Sex'));
    await assert.rejects(predictVersion(engine, penguinsMeta, { instances: [[1, 2]] }), fieldError('instances.0'));
    const plain = await registry.register(
      'plain',
      { inputShape: [2], featureCount: 2, classes: ['a', 'b'], lineage: { kind: 'trained' }, weightDtype: 'float32' },
      async (dir) => {
        const model = tf.sequential({
          layers: [tf.layers.dense({ units: 2, inputShape: [2], activation: 'softmax' })],
        });
        await writeModelArtifacts(model, dir, () => undefined);
        model.dispose();
      },
    );
    await assert.rejects(predictVersion(engine, plain, { records: [{ x: 1 }] }), fieldError('records'));
    const answered = await predictVersion(engine, plain, { instances: [[1, 2]] });
    assert.equal((answered.predictions[0] as ClassPrediction).scores.length, 2, 'instances still work');
  });

  it('regression answers {value} in target units, for records and for preprocessed instances', async () => {
    const records = cars.records.slice(0, 3);
    const res = await predictVersion(engine, carsMeta, { records: records });
    const { features } = encodeRecords(cars.spec, records);
    const target = cars.spec.target;
    assert.ok(target.task === 'regression');
    const want = decodeRegression(target, networkOutputs(cars.model, features, 3, cars.spec.width));
    const values = (res.predictions as ValuePrediction[]).map((p) => p.value);
    values.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `row ${i}`));
    assert.ok(
      values.every((v) => v > 5 && v < 50),
      `miles per gallon, not standardized: ${values.join(', ')}`,
    );
    const instances = [Array.from(features.subarray(0, cars.spec.width))];
    const fromInstances = await predictVersion(engine, carsMeta, { instances });
    assert.ok(Math.abs((fromInstances.predictions[0] as ValuePrediction).value - values[0]!) <= 1e-4);
  });

  it('infers on an uploaded table: JSONL in input order, label column present (JSONL) or absent (CSV)', async () => {
    const id = await upload('jsonl', jsonl(penguins.records));
    const inputs = new JobInputStore(store);
    const deps = { engine, registry, datasets, inputs, store, backend };
    const result = await inferJob(
      { model: ref(penguinsMeta), input: { dataset: { id } }, batchSize: 100 },
      deps,
      hooks('infer-penguins'),
    );
    assert.equal(result.rows, 344);
    const lines = (await readFile(store.outputPath('infer-penguins'), 'utf8')).trim().split('\n');
    const answers = lines.map((l) => JSON.parse(l) as ClassPrediction);
    const direct = await predictVersion(engine, penguinsMeta, { records: penguins.records });
    assert.deepEqual(answers, direct.predictions);

    // CSV without the label: cars' numbers, its date, its name (ignored) and origin.
    const columns = cars.columns.filter((c) => c !== 'Miles_per_Gallon');
    const csv = [columns.join(','), ...cars.records.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n');
    const carsId = await upload('csv', csv);
    await inferJob(
      { model: ref(carsMeta), input: { dataset: { id: carsId } }, batchSize: 64 },
      deps,
      hooks('infer-cars'),
    );
    const values = (await readFile(store.outputPath('infer-cars'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as ValuePrediction).value);
    const want = (await predictVersion(engine, carsMeta, { records: cars.records })).predictions;
    assert.equal(values.length, want.length);
    values.forEach((v, i) => assert.ok(Math.abs(v - (want[i] as ValuePrediction).value) <= 1e-4, `row ${i}`));

    // A table without an input column the model needs: 400 naming the request's field.
    const partial = await upload('csv', 'Island,Sex\nBiscoe,MALE\n');
    await assert.rejects(
      inferJob({ model: ref(penguinsMeta), input: { dataset: { id: partial } }, batchSize: 8 }, deps, hooks('infer-x')),
      fieldError('input.dataset.id'),
    );
  });

  it('a cancel between chunks of a table stops the job, writes nothing and closes the upload', async () => {
    const many = Array.from({ length: 30 }, () => penguins.records).flat(); // 10,320 rows: two chunks
    const id = await upload('jsonl', jsonl(many));
    const controller = new AbortController();
    const seen: number[] = [];
    const running = inferJob(
      { model: ref(penguinsMeta), input: { dataset: { id } }, batchSize: 1024 },
      { engine, registry, datasets, inputs: new JobInputStore(store), store, backend },
      {
        ...hooks<InferProgress>('infer-cancel'),
        signal: controller.signal,
        onProgress: async (p) => {
          if (p.stage !== 'predicting') return;
          seen.push(p.rows ?? 0);
          controller.abort();
        },
      },
    );
    await assert.rejects(running, CancelledError);
    assert.deepEqual(seen, [8192], 'stopped after the first chunk');
    await assert.rejects(readFile(store.outputPath('infer-cancel')), /ENOENT/);
    const fds = await readdir('/proc/self/fd');
    const open = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    assert.deepEqual(
      open.filter((path) => path.startsWith(store.datasetDir(id))),
      [],
      'the source is closed',
    );
  });

  it('compress keeps task, columns and preprocessing; its int8 ONNX carries the pipeline', async () => {
    const made = await compressJob(
      { source: ref(penguinsMeta), quantize: { dtype: 'uint8' } },
      { registry, datasets, backend },
      hooks('compress-penguins'),
    );
    const meta = await registry.getVersion(made.model);
    assert.equal(meta.task, 'classification');
    assert.deepEqual(meta.inputColumns, penguinsMeta.inputColumns);
    for (const file of ['preprocessing.json', 'model.onnx', 'network.onnx', 'model.int8.onnx', 'network.int8.onnx'])
      assert.ok(meta.artifacts[file]! > 0, file);
    const records = penguins.records.slice(0, 50);
    const res = await predictVersion(engine, meta, { records: records });
    assert.equal(res.engine, 'onnxruntime');
    const int8 = await readFile(registry.artifactPath(made.model, 'model.int8.onnx'));
    const props = decodeModel(int8).metadataProps ?? [];
    assert.equal(props.find((p) => p.key === 'quantize')?.value, 'int8-static', 'calibrated on the table rows');
    const session = await ort.InferenceSession.create(int8);
    const rows = records.map((r) => penguins.columns.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(penguins.spec, penguins.columns, rows))).output!.data as Float32Array;
    await session.release();
    const predictions = res.predictions as ClassPrediction[];
    const agree = predictions.filter((p, i) => p.classIndex === argmax(out.subarray(i * 3, i * 3 + 3))).length;
    assert.ok(agree >= 49, `int8 pipeline and int8 network agree on ${agree} of 50`);
    const species = records.filter((r, i) => predictions[i]!.label === r.Species).length;
    assert.ok(species >= 45, `the compressed model still knows penguins: ${species} of 50`);
  });
});

const argmax = (row: Float32Array): number => row.indexOf(Math.max(...row));
const csvCell = (v: unknown): string => (v === null || v === undefined ? '' : JSON.stringify(v).replace(/^"|"$/g, ''));
