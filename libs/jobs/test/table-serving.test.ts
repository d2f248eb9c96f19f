import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { ClassPrediction, ValuePrediction } from '@tq/contracts';
import { predictVersion } from '@tq/jobs';
import { exportPipelineOnnx, writeModelArtifacts } from '@tq/ml';
import { modelSaveHandler } from '@tq/storage';
import { decodeRegression, encodeRecords } from '@tq/tables';
import { feeds } from '../../tables/test/onnx-feeds';
import { fieldError, ref, TableEnv } from './table-env';
import { networkOutputs } from './table-models';

/** Predict on a model trained on a table: records by column name, instances, class names and target units. */
describe('table models: records predict', () => {
  let env: TableEnv;
  before(async () => {
    env = await TableEnv.start();
  });
  after(async () => {
    await env.close();
  });

  it('registers model.onnx (raw columns) and network.onnx (features) beside preprocessing.json', () => {
    for (const file of ['model.json', 'model.onnx', 'network.onnx', 'preprocessing.json'])
      assert.ok(env.penguinsMeta.artifacts[file]! > 0, file);
  });

  it('the engine never runs a pipeline graph on features: a table version without network.onnx runs on tfjs', async () => {
    const meta = await env.registry.register(
      'no-network',
      { ...env.penguinsMeta, lineage: { kind: 'trained' } },
      async (out) => {
        await env.penguins.model.save(modelSaveHandler(out));
        await out.put('preprocessing.json', JSON.stringify(env.penguins.spec));
        await out.put('model.onnx', exportPipelineOnnx(env.penguins.model, env.penguins.spec));
      },
    );
    assert.ok(meta.artifacts['model.onnx']! > 0 && !('network.onnx' in meta.artifacts));
    const res = await predictVersion(env.engine, meta, { records: env.penguins.records.slice(0, 3) });
    assert.equal(res.engine, 'tfjs');
    const old = await predictVersion(env.engine, env.penguinsMeta, { records: env.penguins.records.slice(0, 3) });
    res.predictions.forEach((p, i) =>
      (p as ClassPrediction).scores.forEach((s, k) =>
        assert.ok(Math.abs(s - (old.predictions[i] as ClassPrediction).scores[k]!) <= 1e-5),
      ),
    );
  });

  it('predicts records: names and probabilities equal to the TS path and to the downloaded model.onnx', async () => {
    const records = [env.penguins.records[0]!, { ...env.penguins.records[200]!, Island: 'Atlantis', Sex: null }];
    const res = await predictVersion(env.engine, env.penguinsMeta, { records: records });
    assert.equal(res.engine, 'onnxruntime', 'network.onnx runs on features');
    assert.deepEqual(res.unknownCategories, { Island: 1 });
    const { features } = encodeRecords(env.penguins.spec, records);
    const want = networkOutputs(env.penguins.model, features, 2, env.penguins.spec.width);
    const got = res.predictions as ClassPrediction[];
    assert.equal(got[0]!.label, 'Adelie');
    got.forEach((p, i) =>
      p.scores.forEach((s, k) => assert.ok(Math.abs(s - want[i * 3 + k]!) <= 1e-5, `record ${i} class ${k}`)),
    );
    // The download: a consumer feeding the same raw columns to onnxruntime gets the same answers.
    const session = await ort.InferenceSession.create(
      await env.registry.readArtifact(ref(env.penguinsMeta), 'model.onnx'),
    );
    const rows = records.map((r) => env.penguins.columns.map((c) => r[c] ?? null));
    const out = (await session.run(feeds(env.penguins.spec, env.penguins.columns, rows))).output!.data as Float32Array;
    await session.release();
    got.forEach((p, i) => p.scores.forEach((s, k) => assert.ok(Math.abs(s - out[i * 3 + k]!) <= 1e-5)));
  });

  it('refuses bad records naming records.<i>.<column>, and records sent to a model without a table', async () => {
    const good = env.penguins.records[0]!;
    await assert.rejects(
      predictVersion(env.engine, env.penguinsMeta, { records: [{ ...good, Wings: 2 }] }),
      fieldError('records.0.Wings'),
    );
    const { Sex: _, ...noSex } = good;
    await assert.rejects(
      predictVersion(env.engine, env.penguinsMeta, { records: [good, noSex] }),
      fieldError('records.1.Sex'),
    );
    await assert.rejects(
      predictVersion(env.engine, env.penguinsMeta, { instances: [[1, 2]] }),
      fieldError('instances.0'),
    );
    const plain = await env.registry.register(
      'plain',
      { inputShape: [2], featureCount: 2, classes: ['a', 'b'], lineage: { kind: 'trained' }, weightDtype: 'float32' },
      async (out) => {
        const model = tf.sequential({
          layers: [tf.layers.dense({ units: 2, inputShape: [2], activation: 'softmax' })],
        });
        await writeModelArtifacts(model, out, () => undefined);
        model.dispose();
      },
    );
    await assert.rejects(predictVersion(env.engine, plain, { records: [{ x: 1 }] }), fieldError('records'));
    const answered = await predictVersion(env.engine, plain, { instances: [[1, 2]] });
    assert.equal((answered.predictions[0] as ClassPrediction).scores.length, 2, 'instances still work');
  });

  it('regression answers {value} in target units, for records and for preprocessed instances', async () => {
    const records = env.cars.records.slice(0, 3);
    const res = await predictVersion(env.engine, env.carsMeta, { records: records });
    const { features } = encodeRecords(env.cars.spec, records);
    const target = env.cars.spec.target;
    assert.ok(target.task === 'regression');
    const want = decodeRegression(target, networkOutputs(env.cars.model, features, 3, env.cars.spec.width));
    const values = (res.predictions as ValuePrediction[]).map((p) => p.value);
    values.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `row ${i}`));
    assert.ok(
      values.every((v) => v > 5 && v < 50),
      `miles per gallon, not standardized: ${values.join(', ')}`,
    );
    const instances = [Array.from(features.subarray(0, env.cars.spec.width))];
    const fromInstances = await predictVersion(env.engine, env.carsMeta, { instances });
    assert.ok(Math.abs((fromInstances.predictions[0] as ValuePrediction).value - values[0]!) <= 1e-4);
  });
});
