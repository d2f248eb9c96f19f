import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { decodeModel, exportOnnx, initBackend, loadBuiltinDataset } from '@tq/ml';

const TRAIN = 8000;
const F = 784;

async function run(bytes: Uint8Array, x: Float32Array, rows: number, optimizedPath?: string): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(
    bytes,
    optimizedPath ? { optimizedModelFilePath: optimizedPath, logSeverityLevel: 3 } : {},
  );
  try {
    return (await session.run({ input: new ort.Tensor('float32', x, [rows, x.length / rows]) })).output!
      .data as Float32Array;
  } finally {
    await session.release();
  }
}

function accuracy(scores: Float32Array, labels: Int32Array, classes: number): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (scores[i * classes + k]! > scores[i * classes + best]!) best = k;
    if (best === labels[i]) ok++;
  }
  return ok / labels.length;
}

describe('exportOnnx int8: quantized compute, accuracy within 1 point of float32', () => {
  let model: tf.Sequential;
  let dir: string;
  const mnist = () => loadBuiltinDataset('mnist');

  before(async () => {
    await initBackend();
    dir = await mkdtemp(join(tmpdir(), 'tq-onnx-int8-'));
    // A quick MNIST MLP trained here: the real thing, small enough for a few seconds on wasm.
    model = tf.sequential();
    model.add(
      tf.layers.dense({
        units: 64,
        activation: 'relu',
        inputShape: [F],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
    );
    model.add(
      tf.layers.dense({ units: 32, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    );
    model.add(
      tf.layers.dense({
        units: 10,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
      }),
    );
    model.compile({ optimizer: tf.train.adam(0.003), loss: 'sparseCategoricalCrossentropy' });
    const d = mnist();
    const [xs, ys] = [
      tf.tensor2d(d.x.subarray(0, TRAIN * F), [TRAIN, F]),
      tf.tensor1d(d.y.subarray(0, TRAIN), 'float32'),
    ];
    await model.fit(xs, ys, { epochs: 2, batchSize: 128, shuffle: false, verbose: 0 });
    tf.dispose([xs, ys]);
  });
  after(async () => {
    model.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  for (const scheme of ['qdq', 'integer', 'dynamic'] as const) {
    it(`${scheme}: held-out MNIST accuracy within 1 point, probabilities close, int8 kernels in the runtime graph`, async () => {
      const d = mnist();
      const testRows = d.rows - TRAIN;
      const x = d.x.subarray(TRAIN * F);
      const labels = (d.y as Int32Array).subarray(TRAIN);
      const before = tf.memory().numTensors;
      const int8 =
        scheme === 'dynamic'
          ? exportOnnx(model, { quantize: 'int8' })
          : exportOnnx(model, {
              quantize: 'int8',
              calibration: d.x.subarray(0, 1000 * F),
              int8Scheme: scheme,
            });
      assert.equal(tf.memory().numTensors, before, 'calibration leaked tensors');
      const optimized = join(dir, `${scheme}.onnx`);
      const q = await run(int8, x, testRows, optimized);
      const f = await run(exportOnnx(model), x, testRows);
      const [accQ, accF] = [accuracy(q, labels, 10), accuracy(f, labels, 10)];
      assert.ok(accF > 0.85, `float accuracy ${accF}: the model did not train`);
      assert.ok(Math.abs(accQ - accF) <= 0.01, `int8 accuracy ${accQ} vs float ${accF}`);
      let maxDiff = 0;
      for (let i = 0; i < q.length; i++) maxDiff = Math.max(maxDiff, Math.abs(q[i]! - f[i]!));
      assert.ok(maxDiff < 0.15, `max |p_int8 - p_float| = ${maxDiff}`);
      // Weights are stored as int8 and onnxruntime really computes in int8 (not dequantize-then-float).
      assert.ok(decodeModel(int8).graph.initializer.some((t) => t.dataType === 3 && t.dims.length === 2));
      const ops = decodeModel(await readFile(optimized)).graph.node.map((n) => n.opType);
      assert.ok(
        ops.some((op) => /^(QGemm|QLinearMatMul|MatMulInteger|MatMulIntegerToFloat|DynamicQuantizeMatMul)$/.test(op)),
        `runtime ops: ${ops.join(' ')}`,
      );
      assert.ok(!ops.includes('MatMul') && !ops.includes('Gemm'), `float matmul left: ${ops.join(' ')}`);
    });
  }

  it('quantizes conv stacks (QLinearConv) and stays close to tfjs', async () => {
    const L = tf.layers;
    const cnn = tf.sequential();
    cnn.add(
      L.conv2d({
        filters: 8,
        kernelSize: 3,
        activation: 'relu',
        inputShape: [28, 28, 1],
        kernelInitializer: tf.initializers.glorotUniform({ seed: 4 }),
      }),
    );
    cnn.add(L.maxPooling2d({ poolSize: 2 }));
    cnn.add(
      L.conv2d({
        filters: 16,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
      }),
    );
    cnn.add(L.averagePooling2d({ poolSize: 2 }));
    cnn.add(L.flatten());
    cnn.add(L.dense({ units: 10, kernelInitializer: tf.initializers.glorotUniform({ seed: 6 }) }));
    const d = mnist();
    const rows = 200;
    const x = d.x.subarray(0, rows * F);
    const optimized = join(dir, 'cnn.onnx');
    const q = await run(
      exportOnnx(cnn, { quantize: 'int8', calibration: d.x.subarray(F * 1000, F * 1500) }),
      x,
      rows,
      optimized,
    );
    const want = tf.tidy(
      () => (cnn.predict(tf.tensor4d(x, [rows, 28, 28, 1])) as tf.Tensor).dataSync() as Float32Array,
    );
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < q.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(q[i]! - want[i]!));
      maxAbs = Math.max(maxAbs, Math.abs(want[i]!));
    }
    assert.ok(maxDiff / maxAbs < 0.05, `max |int8 - tfjs| = ${maxDiff} for logits up to ${maxAbs}`);
    const ops = decodeModel(await readFile(optimized)).graph.node.map((n) => n.opType);
    assert.equal(ops.filter((op) => op === 'QLinearConv').length, 2, `runtime ops: ${ops.join(' ')}`);
    cnn.dispose();
  });

  it('refuses calibration rows of the wrong width', () => {
    assert.throws(
      () => exportOnnx(model, { quantize: 'int8', calibration: new Float32Array(F + 1) }),
      /multiple of featureCount 784, got 785/,
    );
  });
});
