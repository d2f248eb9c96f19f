import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { activationLayerSchema, LAYER_TYPES, type LayerSpec } from '@tq/contracts';
import { ArtifactStore, ModelNotFoundError, ModelRegistry } from '@tq/storage';
import {
  buildModel,
  checkModelFitsData,
  inferShapes,
  initBackend,
  loadModelVersion,
  ModelSpecError,
  rowsToTensor,
  saveModelVersion,
} from '@tq/ml';

const cnn: LayerSpec[] = [
  { type: 'reshape', targetShape: [8, 8, 1], inputShape: [64] },
  { type: 'conv2d', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' },
  { type: 'batchNormalization' },
  { type: 'maxPooling2d', poolSize: 2 },
  { type: 'conv2d', filters: 6, kernelSize: [2, 2], strides: 1, dilationRate: 1 },
  { type: 'averagePooling2d', poolSize: [1, 2], strides: 1 },
  { type: 'activation', activation: 'tanh' },
  { type: 'flatten' },
  { type: 'dropout', rate: 0.25 },
  { type: 'dense', units: 3, activation: 'softmax', name: 'probs' },
];

function specError(fn: () => unknown, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ModelSpecError, `expected ModelSpecError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.reason, reason);
    return true;
  });
}

const weightsOf = (m: tf.LayersModel): number[][] => m.getWeights().map((w) => Array.from(w.dataSync()));

describe('buildModel', () => {
  before(() => initBackend());

  it('maps every layer type of the contract, with the shapes inferShapes predicts', () => {
    assert.deepEqual(new Set(cnn.map((l) => l.type)), new Set(LAYER_TYPES));
    const base = tf.memory().numTensors;
    const model = buildModel(cnn, { seed: 3 });
    const shapes = inferShapes(cnn);
    model.layers.forEach((layer, i) =>
      assert.deepEqual((layer.outputShape as number[]).slice(1), shapes[i], `layer ${i} ${layer.getClassName()}`),
    );
    assert.deepEqual(shapes.at(-1), [3]);
    const x = tf.randomUniform([5, 64], 0, 1, 'float32', 1);
    const p = model.predict(x) as tf.Tensor;
    assert.deepEqual(p.shape, [5, 3]);
    const sums = p.sum(1);
    for (const s of sums.dataSync()) assert.ok(Math.abs(s - 1) < 1e-5);
    tf.dispose([x, p, sums]);
    model.dispose();
    assert.equal(tf.memory().numTensors, base);
  });

  it('accepts every activation of the contract', () => {
    for (const activation of activationLayerSchema.shape.activation.options) {
      const m = buildModel(
        [
          { type: 'dense', units: 2, activation, inputShape: [3] },
          { type: 'activation', activation: 'softmax' },
        ],
        { seed: 1 },
      );
      const out = m.predict(tf.ones([1, 3])) as tf.Tensor;
      assert.ok(out.dataSync().every(Number.isFinite), activation);
      out.dispose();
      m.dispose();
    }
  });

  it('gives the same weights for the same seed, and others for another seed', () => {
    const a = buildModel(cnn, { seed: 11 });
    const b = buildModel(cnn, { seed: 11 });
    const c = buildModel(cnn, { seed: 12 });
    assert.deepEqual(weightsOf(a), weightsOf(b));
    assert.notDeepEqual(weightsOf(a), weightsOf(c));
    // Layers get different seeds from each other: two equal dense layers do not start equal.
    const twin = buildModel(
      [
        { type: 'dense', units: 4, inputShape: [4] },
        { type: 'dense', units: 4, activation: 'softmax' },
      ],
      { seed: 1 },
    );
    const [k1, , k2] = weightsOf(twin);
    assert.notDeepEqual(k1, k2);
    [a, b, c, twin].forEach((m) => m.dispose());
  });

  it('names the field of shape mistakes', () => {
    const dense = (units: number, extra: Partial<LayerSpec> = {}): LayerSpec =>
      ({ type: 'dense', units, activation: 'softmax', ...extra }) as LayerSpec;
    specError(
      () =>
        buildModel([{ type: 'reshape', targetShape: [28, 28, 1], inputShape: [100] }, { type: 'flatten' }, dense(2)], {
          seed: 1,
        }),
      'model.layers.0.targetShape',
      /784 values .* holds 100/,
    );
    specError(
      () =>
        buildModel(
          [
            { type: 'reshape', targetShape: [4, 4, 1], inputShape: [16] },
            { type: 'conv2d', filters: 2, kernelSize: 5 },
            { type: 'flatten' },
            dense(2),
          ],
          { seed: 1 },
        ),
      'model.layers.1.kernelSize',
      /5x5 is larger than its 4x4 input/,
    );
    specError(
      () =>
        buildModel(
          [
            { type: 'reshape', targetShape: [3, 3, 1], inputShape: [9] },
            { type: 'maxPooling2d', poolSize: 4 },
            { type: 'flatten' },
            dense(2),
          ],
          { seed: 1 },
        ),
      'model.layers.1.poolSize',
      /larger/,
    );
    specError(
      () =>
        buildModel([{ type: 'conv2d', filters: 2, kernelSize: 3, inputShape: [784] }, { type: 'flatten' }, dense(2)], {
          seed: 1,
        }),
      'model.layers.0',
      /\[height, width, channels\].*reshape/,
    );
    specError(
      () =>
        buildModel(
          [
            { type: 'reshape', targetShape: [8, 8, 1], inputShape: [64] },
            { type: 'conv2d', filters: 2, kernelSize: 3, strides: 2, dilationRate: 2 },
            { type: 'flatten' },
            dense(2),
          ],
          { seed: 1 },
        ),
      'model.layers.1.dilationRate',
      /strides 1/,
    );
    specError(
      () => buildModel([{ type: 'reshape', targetShape: [4, 4, 1], inputShape: [16] }, dense(2)], { seed: 1 }),
      'model.layers.1',
      /outputs \[4, 4, 2\].*flatten/,
    );
    specError(
      () => buildModel([{ type: 'dense', units: 3, inputShape: [4] }], { seed: 1 }),
      'model.layers.0.activation',
      /softmax/,
    );
    specError(
      () => buildModel([{ type: 'dense', units: 3 }, dense(2)], { seed: 1 }),
      'model.layers.0.inputShape',
      /must declare/,
    );
    specError(
      () => buildModel([{ type: 'dense', units: 3, inputShape: [4], name: 'a' }, dense(2, { name: 'a' })], { seed: 1 }),
      'model.layers.1.name',
      /two layers/,
    );
    specError(
      () => buildModel([{ type: 'dense', units: 3, inputShape: [4] }, dense(2, { inputShape: [5] })], { seed: 1 }),
      'model.layers.1.inputShape',
      /receives \[3\]/,
    );
  });
});

describe('checkModelFitsData and rowsToTensor', () => {
  before(() => initBackend());

  it('accepts an image model on flat rows of the same size and names the field of a mismatch', () => {
    const model = buildModel(
      [
        { type: 'conv2d', filters: 2, kernelSize: 3, inputShape: [28, 28, 1] },
        { type: 'flatten' },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
      { seed: 1 },
    );
    const digits = { featureCount: 784, classes: [...'0123456789'], rows: 10 };
    checkModelFitsData(model, digits);
    specError(
      () => checkModelFitsData(model, { ...digits, featureCount: 4 }),
      'model.layers.0.inputShape',
      /\[28, 28, 1\] \(784 values per row\).* 4 features/,
    );
    specError(
      () => checkModelFitsData(model, { ...digits, classes: ['a', 'b', 'c'] }),
      'model.layers.2.units',
      /outputs 10 values .* 3 classes/,
    );
    specError(() => checkModelFitsData(model, { ...digits, classes: ['a'] }, 'model.from'), 'model.from', /10 values/);
    specError(
      () => checkModelFitsData(model, digits, 'model.layers', { validationSplit: 0.95 }),
      'fit.validationSplit',
      /no training rows out of 10/,
    );
    model.dispose();
  });

  it('names the layer, not units, when an activation layer ends the model (as layersIo does)', () => {
    const model = buildModel(
      [
        { type: 'dense', units: 3, inputShape: [4] },
        { type: 'activation', activation: 'softmax' },
      ],
      { seed: 1 },
    );
    specError(
      () => checkModelFitsData(model, { featureCount: 4, classes: ['a', 'b'], rows: 4 }),
      'model.layers.1',
      /3 values/,
    );
    model.dispose();
  });

  it('reshapes flat rows row-major, channels last', () => {
    const data = { x: Float32Array.from({ length: 3 * 12 }, (_, i) => i), featureCount: 12 };
    const t = rowsToTensor(data, 1, 2, [2, 3, 2]);
    assert.deepEqual(t.shape, [2, 2, 3, 2]);
    const v = t.arraySync() as number[][][][];
    // row 1 starts at 12; value k of a row sits at (k / (W*C), (k / C) % W, k % C) with W=3, C=2
    assert.equal(v[0]![1]![2]![1], 12 + 1 * 6 + 2 * 2 + 1);
    assert.equal(v[1]![0]![1]![0], 24 + 2);
    t.dispose();
  });
});

describe('saveModelVersion / loadModelVersion', () => {
  let root: string;
  let registry: ModelRegistry;
  before(async () => {
    await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-model-io-'));
    registry = new ModelRegistry(new ArtifactStore(root));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('registers a version and loads it back with the same predictions', async () => {
    const model = buildModel(cnn, { seed: 5 });
    const meta = await saveModelVersion(registry, 'shapes', model, {
      inputShape: [64],
      featureCount: 64,
      classes: ['a', 'b', 'c'],
      layers: cnn,
      lineage: { kind: 'trained', dataset: { builtin: 'iris' } },
      weightDtype: 'float32',
    });
    assert.equal(meta.version, 1);
    assert.ok(meta.artifacts['model.json']! > 0);
    assert.equal(
      meta.artifacts['weights.bin'],
      model.getWeights().reduce((n, w) => n + w.size * 4, 0),
    );
    const base = tf.memory().numTensors;
    const { model: loaded, meta: loadedMeta } = await loadModelVersion(registry, { name: 'shapes', version: 1 });
    assert.deepEqual(loadedMeta, meta);
    const x = tf.randomUniform([4, 64], 0, 1, 'float32', 2);
    const [p, q] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    assert.deepEqual(Array.from(q.dataSync()), Array.from(p.dataSync()));
    tf.dispose([x, p, q]);
    loaded.dispose();
    assert.equal(tf.memory().numTensors, base);
    model.dispose();
    await assert.rejects(loadModelVersion(registry, { name: 'shapes', version: 9 }), ModelNotFoundError);
  });
});
