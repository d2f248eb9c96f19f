import assert from 'node:assert/strict';
import { readdir, readlink } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { CancelledError, type ClassPrediction, type InferProgress, type ValuePrediction } from '@tq/contracts';
import { compressJob, inferJob, predictVersion } from '@tq/jobs';
import { decodeModel, writeModelArtifacts } from '@tq/ml';
import { JobInputStore } from '@tq/storage';
import { feeds } from '../../tables/test/onnx-feeds';
import { fieldError, jsonl, ref, TableEnv } from './table-env';
import { localPath, readOutput } from './local-store';
import { BlobNotFoundError } from '@tq/storage';

/** Infer jobs on uploaded tables and compression of a table model. */
describe('table models: infer jobs on uploaded tables, compress', () => {
  let env: TableEnv;
  before(async () => {
    env = await TableEnv.start();
  });
  after(async () => {
    await env.close();
  });

  it('infers on an uploaded table: JSONL in input order, label column present (JSONL) or absent (CSV)', async () => {
    const id = await env.upload('jsonl', jsonl(env.penguins.records));
    const inputs = new JobInputStore(env.store);
    const deps = { ...env, inputs };
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 100 },
      deps,
      env.hooks('infer-penguins'),
    );
    assert.equal(result.rows, 344);
    const lines = (await readOutput(env.store, 'infer-penguins')).trim().split('\n');
    const answers = lines.map((l) => JSON.parse(l) as ClassPrediction);
    const direct = await predictVersion(env.engine, env.penguinsMeta, { records: env.penguins.records });
    assert.deepEqual(answers, direct.predictions);

    // CSV without the label: cars' numbers, its date, its name (ignored) and origin.
    const columns = env.cars.columns.filter((c) => c !== 'Miles_per_Gallon');
    const csv = [columns.join(','), ...env.cars.records.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join(
      '\n',
    );
    const carsId = await env.upload('csv', csv);
    await inferJob(
      { model: ref(env.carsMeta), input: { dataset: { id: carsId } }, batchSize: 64 },
      deps,
      env.hooks('infer-cars'),
    );
    const values = (await readOutput(env.store, 'infer-cars'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as ValuePrediction).value);
    const want = (await predictVersion(env.engine, env.carsMeta, { records: env.cars.records })).predictions;
    assert.equal(values.length, want.length);
    values.forEach((v, i) => assert.ok(Math.abs(v - (want[i] as ValuePrediction).value) <= 1e-4, `row ${i}`));

    // A table without an input column the model needs: 400 naming the request's field.
    const partial = await env.upload('csv', 'Island,Sex\nBiscoe,MALE\n');
    await assert.rejects(
      inferJob(
        { model: ref(env.penguinsMeta), input: { dataset: { id: partial } }, batchSize: 8 },
        deps,
        env.hooks('infer-x'),
      ),
      fieldError('input.dataset.id'),
    );
  });

  it('a cancel between chunks of a table stops the job, writes nothing and closes the upload', async () => {
    const many = Array.from({ length: 30 }, () => env.penguins.records).flat(); // 10,320 rows: two chunks
    const id = await env.upload('jsonl', jsonl(many));
    const controller = new AbortController();
    const seen: number[] = [];
    const running = inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 1024 },
      { ...env, inputs: new JobInputStore(env.store) },
      {
        ...env.hooks<InferProgress>('infer-cancel'),
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
    await assert.rejects(readOutput(env.store, 'infer-cancel'), BlobNotFoundError);
    const fds = await readdir('/proc/self/fd');
    const open = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
    assert.deepEqual(
      open.filter((path) => path.startsWith(localPath(env.store, env.store.datasetPrefix(id)))),
      [],
      'the source is closed',
    );
  });

  it('compress keeps task, columns and preprocessing; its int8 ONNX carries the pipeline', async () => {
    const made = await compressJob(
      { source: ref(env.penguinsMeta), quantize: { dtype: 'uint8' } },
      env,
      env.hooks('compress-penguins'),
    );
    const meta = await env.registry.getVersion(made.model);
    assert.equal(meta.task, 'classification');
    assert.deepEqual(meta.inputColumns, env.penguinsMeta.inputColumns);
    for (const file of ['preprocessing.json', 'model.onnx', 'network.onnx', 'model.int8.onnx', 'network.int8.onnx'])
      assert.ok(meta.artifacts[file]! > 0, file);
    const records = env.penguins.records.slice(0, 50);
    const res = await predictVersion(env.engine, meta, { records: records });
    assert.equal(res.engine, 'onnxruntime');
    const int8 = await env.registry.readArtifact(made.model, 'model.int8.onnx');
    const props = decodeModel(int8).metadataProps ?? [];
    assert.equal(props.find((p) => p.key === 'quantize')?.value, 'int8-static', 'calibrated on the table rows');
    const session = await ort.InferenceSession.create(int8);
    const rows = records.map((r) => env.penguins.columns.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(env.penguins.spec, env.penguins.columns, rows))).output!.data as Float32Array;
    await session.release();
    const predictions = res.predictions as ClassPrediction[];
    const agree = predictions.filter((p, i) => p.classIndex === argmax(out.subarray(i * 3, i * 3 + 3))).length;
    assert.ok(agree >= 49, `int8 pipeline and int8 network agree on ${agree} of 50`);
    const species = records.filter((r, i) => predictions[i]!.label === r.Species).length;
    assert.ok(species >= 45, `the compressed model still knows penguins: ${species} of 50`);
  });

  it('compress of a version trained on an uploaded id without preprocessing.json (an older version) uses dynamic int8', async () => {
    const plain = await env.registry.register(
      'older',
      {
        inputShape: [2],
        featureCount: 2,
        classes: ['a', 'b'],
        lineage: { kind: 'trained', dataset: { id: '4b1c3a5e-0000-4000-8000-000000000000' } },
        weightDtype: 'float32',
      },
      async (out) => {
        const model = tf.sequential({
          layers: [tf.layers.dense({ units: 2, inputShape: [2], activation: 'softmax' })],
        });
        await writeModelArtifacts(model, out, () => undefined);
        model.dispose();
      },
    );
    const made = await compressJob(
      { source: ref(plain), quantize: { dtype: 'uint8' } },
      env,
      env.hooks('compress-older'),
    );
    const int8 = await env.registry.readArtifact(made.model, 'model.int8.onnx');
    const props = decodeModel(int8).metadataProps ?? [];
    assert.equal(props.find((p) => p.key === 'quantize')?.value, 'int8-dynamic');
  });
});

const argmax = (row: Float32Array): number => row.indexOf(Math.max(...row));
const csvCell = (v: unknown): string => (v === null || v === undefined ? '' : JSON.stringify(v).replace(/^"|"$/g, ''));
