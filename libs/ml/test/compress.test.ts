import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { fitSchema } from '@tq/contracts';
import { ArtifactStore, ModelRegistry, readModelArtifacts } from '@tq/storage';
import {
  buildModel,
  compressVersion,
  initBackend,
  loadBuiltinDataset,
  loadModelVersion,
  modelInputShape,
  quantizeArtifacts,
  rowsToTensor,
  saveModelVersion,
  sliceRows,
  toFloat16Bits,
  trainModel,
} from '@tq/ml';

/** Decodes with tfjs's own reader: what stock tf.loadLayersModel will see. */
function decodeOne(values: Float32Array, dtype: 'uint8' | 'uint16' | 'float16'): { back: Float32Array; scale: number } {
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: {},
    weightSpecs: [{ name: 'w', shape: [values.length], dtype: 'float32' }],
    weightData: values.slice().buffer,
  };
  const q = quantizeArtifacts(artifacts, dtype);
  const t = tf.io.decodeWeights(q.weightData!, q.weightSpecs!)['w']!;
  const back = t.dataSync() as Float32Array;
  t.dispose();
  return { back, scale: q.weightSpecs![0]!.quantization!.scale ?? 0 };
}

describe('quantizeArtifacts', () => {
  before(() => initBackend());

  it('float16: matches tfjs decoding within half precision, exact on representable values', () => {
    const rand = tf.randomNormal([5000], 0, 3, 'float32', 1).dataSync() as Float32Array;
    const special = Float32Array.of(0, -0, 1, -2.5, 65504, 1e-7, 6.1e-5, 2 ** -24, 0.1, 1 / 3);
    const values = Float32Array.from([...rand, ...special]);
    const { back } = decodeOne(values, 'float16');
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const tolerance = Math.max(Math.abs(v) * 2 ** -11, 2 ** -25); // half ulp, or half the smallest subnormal
      assert.ok(Math.abs(back[i]! - v) <= tolerance, `${v} came back as ${back[i]}`);
    }
    const exact = Float32Array.of(0, 1, -2.5, 65504, 2 ** -24, 0.099975586); // all representable in half precision
    assert.deepEqual(Array.from(decodeOne(exact, 'float16').back), Array.from(exact));
    assert.equal(decodeOne(Float32Array.of(70000), 'float16').back[0], Infinity);
    assert.equal(toFloat16Bits(1), 0x3c00);
    assert.equal(toFloat16Bits(-2), 0xc000);
    assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00); // a tie rounds to even
    assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  });

  for (const dtype of ['uint8', 'uint16'] as const) {
    it(`${dtype}: every value within half a step, zero exact`, () => {
      const values = Float32Array.from(tf.randomUniform([4000], -0.7, 1.3, 'float32', 2).dataSync());
      values[17] = 0;
      const { back, scale } = decodeOne(values, dtype);
      assert.ok(scale > 0 && scale < (dtype === 'uint8' ? 2.01 / 255 : 2.01 / 65535));
      assert.equal(back[17], 0);
      let worst = 0;
      for (let i = 0; i < values.length; i++) worst = Math.max(worst, Math.abs(back[i]! - values[i]!));
      assert.ok(worst <= scale * 0.5 + 1e-7, `worst error ${worst}, step ${scale}`);
      const positives = decodeOne(Float32Array.of(0.5, 0.75, 1), dtype).back; // range widened to hold 0
      assert.ok(Math.abs(positives[2]! - 1) <= (dtype === 'uint8' ? 1 / 255 : 1 / 65535));
    });
  }
});

describe('compressVersion', () => {
  let root: string;
  let registry: ModelRegistry;
  before(async () => {
    await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-compress-'));
    registry = new ModelRegistry(new ArtifactStore(root));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('registers quantized versions that stock tf.loadLayersModel loads, with close predictions and smaller weights', async () => {
    const mnist = loadBuiltinDataset('mnist');
    const train = sliceRows(mnist, 0, 3000);
    const test = sliceRows(mnist, 9000, 10000);
    const layers = [
      { type: 'dense' as const, units: 64, activation: 'relu' as const, inputShape: [784] },
      { type: 'dense' as const, units: 10, activation: 'softmax' as const },
    ];
    const model = buildModel(layers, { seed: 1 });
    await trainModel({
      model,
      data: train,
      fit: fitSchema.parse({ epochs: 2, batchSize: 64, learningRate: 0.003, validationSplit: 0, seed: 1 }),
    });
    const source = await saveModelVersion(registry, 'digits', model, {
      inputShape: [784],
      featureCount: 784,
      classes: mnist.classes,
      layers,
      lineage: { kind: 'trained', dataset: { builtin: 'mnist' } },
      weightDtype: 'float32',
    });
    const x = rowsToTensor(test, 0, test.rows, modelInputShape(model));
    const original = model.predict(x, { batchSize: 1000 }) as tf.Tensor;
    const p = original.dataSync();
    const labels = original.argMax(-1);
    const origLabels = labels.dataSync();

    const measured: Record<string, { maxAbs: number; agree: number; ratio: number }> = {};
    for (const dtype of ['uint8', 'uint16', 'float16'] as const) {
      const out = await compressVersion(
        registry,
        { name: 'digits', version: source.version },
        { dtype, jobId: `job-${dtype}` },
      );
      assert.equal(out.meta.name, 'digits');
      assert.equal(out.meta.weightDtype, dtype);
      assert.deepEqual(out.meta.lineage, {
        kind: 'compressed',
        parent: { name: 'digits', version: 1 },
        compression: { quantize: dtype },
        jobId: `job-${dtype}`,
        dataset: { builtin: 'mnist' },
      });
      assert.deepEqual(out.meta.classes, mnist.classes);
      assert.equal(out.bytesBefore, source.artifacts['model.json']! + source.artifacts['weights.bin']!);
      assert.ok(out.bytesAfter < out.bytesBefore);
      const manifest = (await readModelArtifacts(registry, out.meta)).weightSpecs!;
      assert.ok(manifest.every((s) => s.quantization?.dtype === dtype));

      const { model: loaded } = await loadModelVersion(registry, out.meta); // stock tf.loadLayersModel underneath
      const q = loaded.predict(x, { batchSize: 1000 }) as tf.Tensor;
      const qv = q.dataSync();
      const ql = q.argMax(-1);
      const qLabels = ql.dataSync();
      let maxAbs = 0;
      for (let i = 0; i < p.length; i++) maxAbs = Math.max(maxAbs, Math.abs(qv[i]! - p[i]!));
      let agree = 0;
      for (let i = 0; i < origLabels.length; i++) if (origLabels[i] === qLabels[i]) agree++;
      measured[dtype] = {
        maxAbs,
        agree: agree / origLabels.length,
        ratio: source.artifacts['weights.bin']! / out.meta.artifacts['weights.bin']!,
      };
      tf.dispose([q, ql]);
      loaded.dispose();
    }
    console.log('quantization on 1000 MNIST test rows:', JSON.stringify(measured));
    // Measured here (wasm): max |Δp| uint8 0.011 (99.9% same labels), uint16 3.6e-5, float16 5.8e-4 (100%).
    // Bounds below leave ~4x headroom for other backends' rounding.
    assert.ok(measured.uint8!.maxAbs < 0.05 && measured.uint8!.agree >= 0.99, JSON.stringify(measured.uint8));
    assert.ok(measured.uint16!.maxAbs < 2e-4 && measured.uint16!.agree >= 0.998, JSON.stringify(measured.uint16));
    assert.ok(measured.float16!.maxAbs < 3e-3 && measured.float16!.agree >= 0.998, JSON.stringify(measured.float16));
    assert.equal(measured.uint8!.ratio, 4);
    assert.equal(measured.uint16!.ratio, 2);
    assert.equal(measured.float16!.ratio, 2);
    tf.dispose([x, original, labels]);
    model.dispose();
  });
});
