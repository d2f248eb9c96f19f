import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { activationLayerSchema, LAYER_TYPES, type LayerSpec } from '@tq/contracts';
import { decodeModel, exportOnnx, initBackend, mulberry32, UnsupportedLayerError } from '@tq/ml';

type LayerType = LayerSpec['type'];
const ACTIVATIONS = activationLayerSchema.shape.activation.options;
const ROWS = 7;

/** Every weight random (seeded), so biases, BN statistics and all kernels matter; variances stay positive. */
function randomizeWeights(model: tf.LayersModel, seed: number): void {
  const rand = mulberry32(seed);
  for (const layer of model.layers) {
    const values = layer.weights.map((w) => {
      const shape = w.shape as number[];
      const positive = /variance/.test(w.originalName);
      const data = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () =>
        positive ? 0.5 + rand() : rand() - 0.5,
      );
      return tf.tensor(data, shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

function seq(inputShape: number[], layers: tf.layers.Layer[]): tf.Sequential {
  const m = tf.sequential();
  m.add(tf.layers.inputLayer({ inputShape }));
  for (const l of layers) m.add(l);
  return m;
}

/** Exports `model`, runs it in onnxruntime and in tfjs on the same random rows; returns the max |diff|. */
async function maxDiff(model: tf.LayersModel, seed = 1): Promise<number> {
  randomizeWeights(model, seed);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const featureCount = inputShape.reduce((a, b) => a * b, 1);
  const rand = mulberry32(seed + 100);
  const rows = Float32Array.from({ length: ROWS * featureCount }, () => rand() * 2 - 1);
  const session = await ort.InferenceSession.create(exportOnnx(model));
  try {
    const out = await session.run({ input: new ort.Tensor('float32', rows, [ROWS, featureCount]) });
    const got = out.output!.data as Float32Array;
    const want = tf.tidy(
      () =>
        (model.predict(tf.tensor(rows, [ROWS, ...inputShape])) as tf.Tensor)
          .reshape([ROWS, -1])
          .dataSync() as Float32Array,
    );
    assert.equal(got.length, want.length, 'output sizes differ');
    assert.deepEqual(out.output!.dims, [ROWS, want.length / ROWS]);
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    return diff;
  } finally {
    await session.release();
    model.dispose();
  }
}

const L = tf.layers;
/** One model per layer type of the public contract (compile-time exhaustive), each in several configurations. */
const LAYER_CASES: Record<LayerType, Array<[string, () => tf.LayersModel]>> = {
  dense: [
    ['2-D', () => seq([6], [L.dense({ units: 5 }), L.dense({ units: 3, useBias: false })])],
    ['rank-3 input (MatMul over the last axis)', () => seq([4, 6], [L.dense({ units: 5, activation: 'relu' })])],
  ],
  conv2d: [
    ['valid, stride 1', () => seq([7, 6, 3], [L.conv2d({ filters: 4, kernelSize: 3 })])],
    [
      'same, stride 2, odd sizes',
      () => seq([9, 7, 2], [L.conv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same' })]),
    ],
    [
      'same, non-square kernel and strides',
      () =>
        seq(
          [8, 9, 2],
          [L.conv2d({ filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'same', useBias: false })],
        ),
    ],
    [
      'dilation 2, same',
      () => seq([9, 8, 2], [L.conv2d({ filters: 3, kernelSize: 3, dilationRate: 2, padding: 'same' })]),
    ],
    ['dilation [2, 1], valid', () => seq([9, 8, 2], [L.conv2d({ filters: 3, kernelSize: 2, dilationRate: [2, 1] })])],
  ],
  maxPooling2d: [
    ['2x2 valid', () => seq([6, 8, 3], [L.maxPooling2d({ poolSize: 2 })])],
    [
      '3x3 stride 2 same, odd sizes',
      () => seq([7, 9, 2], [L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' })]),
    ],
  ],
  averagePooling2d: [
    ['2x2 valid', () => seq([6, 8, 3], [L.averagePooling2d({ poolSize: 2 })])],
    [
      '3x3 stride 2 same (padding not counted)',
      () => seq([7, 9, 2], [L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' })]),
    ],
  ],
  flatten: [
    [
      'after conv: tfjs (H, W, C) order',
      () => seq([5, 4, 3], [L.conv2d({ filters: 2, kernelSize: 2 }), L.flatten(), L.dense({ units: 3 })]),
    ],
  ],
  dropout: [
    ['identity at inference', () => seq([5], [L.dense({ units: 6 }), L.dropout({ rate: 0.5 }), L.dense({ units: 2 })])],
  ],
  batchNormalization: [
    ['after dense', () => seq([5], [L.dense({ units: 6 }), L.batchNormalization({ epsilon: 0.01 })])],
    [
      'after conv (NCHW)',
      () => seq([6, 5, 2], [L.conv2d({ filters: 3, kernelSize: 3 }), L.batchNormalization(), L.flatten()]),
    ],
    [
      'on the image input (NHWC)',
      () => seq([4, 4, 3], [L.batchNormalization(), L.conv2d({ filters: 2, kernelSize: 2 }), L.flatten()]),
    ],
  ],
  reshape: [
    [
      'flat → image → conv',
      () => seq([24], [L.reshape({ targetShape: [2, 4, 3] }), L.conv2d({ filters: 2, kernelSize: 2 }), L.flatten()]),
    ],
    [
      'after conv (back to tfjs order)',
      () =>
        seq(
          [6, 6, 2],
          [L.conv2d({ filters: 4, kernelSize: 3 }), L.reshape({ targetShape: [8, 8] }), L.dense({ units: 2 })],
        ),
    ],
  ],
  activation: [
    [
      'softmax over the channels of a conv output',
      () => seq([5, 5, 2], [L.conv2d({ filters: 4, kernelSize: 2 }), L.activation({ activation: 'softmax' })]),
    ],
    ['tanh after dense', () => seq([5], [L.dense({ units: 4 }), L.activation({ activation: 'tanh' })])],
  ],
};

describe('exportOnnx: onnxruntime matches tfjs within 1e-5', () => {
  before(() => initBackend());

  it('has a case for every layer type of the contract', () => {
    assert.deepEqual(Object.keys(LAYER_CASES).sort(), [...LAYER_TYPES].sort());
  });

  for (const [type, cases] of Object.entries(LAYER_CASES)) {
    for (const [label, build] of cases) {
      it(`${type}: ${label}`, async () => {
        const diff = await maxDiff(build());
        assert.ok(diff <= 1e-5, `max |onnx - tfjs| = ${diff}`);
      });
    }
  }

  for (const act of ACTIVATIONS) {
    it(`activation ${act} in dense and in conv2d (NCHW)`, async () => {
      const dense = await maxDiff(seq([6], [L.dense({ units: 5, activation: act })]), 3);
      const conv = await maxDiff(seq([5, 4, 2], [L.conv2d({ filters: 3, kernelSize: 2, activation: act })]), 4);
      assert.ok(dense <= 1e-5 && conv <= 1e-5, `max |diff| dense ${dense}, conv ${conv}`);
    });
  }

  it('the issue CNN (conv 3x3x16 → pool → conv 3x3x32 → pool → dense 10 softmax) and a functional chain', async () => {
    const cnn = seq(
      [28, 28, 1],
      [
        L.conv2d({ filters: 16, kernelSize: 3, activation: 'relu' }),
        L.maxPooling2d({ poolSize: 2 }),
        L.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }),
        L.maxPooling2d({ poolSize: 2 }),
        L.flatten(),
        L.dense({ units: 10, activation: 'softmax' }),
      ],
    );
    assert.ok((await maxDiff(cnn)) <= 1e-5);
    const input = tf.input({ shape: [6] });
    const hidden = L.dense({ units: 4, activation: 'elu' }).apply(input) as tf.SymbolicTensor;
    const fn = tf.model({
      inputs: input,
      outputs: L.leakyReLU({ alpha: 0.2 }).apply(L.reLU({ maxValue: 0.1 }).apply(hidden)) as tf.SymbolicTensor,
    });
    assert.ok((await maxDiff(fn)) <= 1e-5);
  });

  it('writes the documented graph contract and leaks no tensors', () => {
    const model = seq([4, 4, 1], [L.conv2d({ filters: 2, kernelSize: 2 }), L.flatten(), L.dense({ units: 3 })]);
    const before = tf.memory().numTensors;
    const decoded = decodeModel(exportOnnx(model, { opset: 13 }));
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(
      decoded.graph.input.map((i) => i.name),
      ['input'],
    );
    assert.deepEqual(
      decoded.graph.output.map((o) => o.name),
      ['output'],
    );
    assert.deepEqual(decoded.graph.input[0]!.type.tensorType.shape.dim, [{ dimParam: 'N' }, { dimValue: 16 }]);
    assert.deepEqual(decoded.graph.output[0]!.type.tensorType.shape.dim, [{ dimParam: 'N' }, { dimValue: 3 }]);
    assert.deepEqual(
      decoded.opsetImport.map((o) => [o.domain ?? '', o.version]),
      [['', 13]],
    );
    model.dispose();
  });

  it('refuses what it cannot export, naming the layer', () => {
    const conv1d = seq([8, 2], [L.conv1d({ filters: 2, kernelSize: 3 })]);
    assert.throws(
      () => exportOnnx(conv1d),
      (e: unknown) => e instanceof UnsupportedLayerError && /Conv1D/.test(e.message),
    );
    const input = tf.input({ shape: [4] });
    const branch = tf.model({
      inputs: input,
      outputs: L.add().apply([
        L.dense({ units: 2 }).apply(input),
        L.dense({ units: 2 }).apply(input),
      ] as tf.SymbolicTensor[]) as tf.SymbolicTensor,
    });
    assert.throws(() => exportOnnx(branch), UnsupportedLayerError);
    assert.throws(() => exportOnnx(seq([3], [L.dense({ units: 1 })]), { opset: 9 }), RangeError);
    conv1d.dispose();
    branch.dispose();
  });
});
