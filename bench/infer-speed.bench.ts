import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import {
  attachOnnx,
  exportOnnx,
  InferenceEngine,
  initBackend,
  loadBuiltinDataset,
  ONNX_ARTIFACT,
  ONNX_INT8_ARTIFACT,
} from '@tq/ml';
import { ArtifactStore, modelSaveHandler, ModelRegistry } from '@tq/storage';
import { envInt } from './lib/env';
import { digitsCnn } from './lib/models';
import { fmt, printComparisons, printContext, ratio, type Comparison } from './lib/report';

/**
 * Batch inference speed (issue 5 goals), one run, one MLP 784-256-128-10 trained here on MNIST, the
 * same rows for every contender:
 *  - InferenceEngine.predict vs bare onnxruntime InferenceSession.run on the same model.onnx (goal ≥ 0.9x);
 *  - tfjs model.predict with its default batch (32) vs a large batch, and the engine's tfjs path;
 *  - the int8 export vs the float32 export in bare onnxruntime (goal ≥ 1.3x), with the accuracy change
 *    on held-out MNIST (goal ≤ 1 point), for both int8 forms and for dynamic (uncalibrated) int8;
 *  - the small CNN, float32 vs int8 (untrained: speed only).
 * onnxruntime single-threaded (intraOpNumThreads 1) and with its default threads, both reported.
 * Each rows/s is the best of REPEATS timed passes after one warm-up, contenders interleaved.
 * Env: BENCH_ROWS (default 20000), BENCH_BATCH (1024), BENCH_REPEATS (5), BENCH_EPOCHS (2).
 */
const ROWS = envInt(process.env.BENCH_ROWS, 20_000);
const BATCH = envInt(process.env.BENCH_BATCH, 1024);
const REPEATS = envInt(process.env.BENCH_REPEATS, 5);
const EPOCHS = envInt(process.env.BENCH_EPOCHS, 2);
const TRAIN = 8000;
const F = 784;

type Pass = () => Promise<unknown>;

/**
 * rows/s of each contender: best of REPEATS passes over `rows` rows after a warm-up. Contenders are
 * interleaved, in reversed order every other round (A B, B A, ...): onnxruntime's pool threads spin
 * for a while after a run and slow whoever runs next, and load from other processes drifts.
 */
async function measure(
  contenders: Record<string, Pass>,
  rows = ROWS,
  repeats = REPEATS,
): Promise<Record<string, number>> {
  const best: Record<string, number> = {};
  for (const pass of Object.values(contenders)) await pass();
  for (let r = 0; r < repeats; r++) {
    const order = Object.entries(contenders);
    if (r % 2 === 1) order.reverse();
    for (const [name, pass] of order) {
      const t = performance.now();
      await pass();
      best[name] = Math.max(best[name] ?? 0, rows / ((performance.now() - t) / 1000));
    }
  }
  return best;
}

/** The bare baseline: one session, batches of BATCH, outputs copied out (as the engine does). */
function barePass(session: ort.InferenceSession, x: Float32Array, rows: number, width: number, outSize: number): Pass {
  return async () => {
    const out = new Float32Array(rows * outSize);
    for (let s = 0; s < rows; s += BATCH) {
      const n = Math.min(BATCH, rows - s);
      const r = await session.run({
        input: new ort.Tensor('float32', x.subarray(s * width, (s + n) * width), [n, width]),
      });
      out.set(r.output!.data as Float32Array, s * outSize);
    }
    return out;
  };
}

function accuracy(scores: Float32Array, labels: Int32Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (scores[i * 10 + k]! > scores[i * 10 + best]!) best = k;
    if (best === labels[i]) ok++;
  }
  return ok / labels.length;
}

async function main(): Promise<void> {
  const backend = await initBackend();
  const mnist = loadBuiltinDataset('mnist');
  const x = new Float32Array(ROWS * F);
  for (let r = 0; r < ROWS; r++) x.set(mnist.x.subarray((r % mnist.rows) * F, ((r % mnist.rows) + 1) * F), r * F);
  const [xTest, yTest] = [mnist.x.subarray(TRAIN * F), (mnist.y as Int32Array).subarray(TRAIN)];

  // The MLP, trained with plain tfjs on the first 8,000 digits; the other 2,000 measure accuracy.
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 256, activation: 'relu', inputShape: [F] }),
      tf.layers.dense({ units: 128, activation: 'relu' }),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'sparseCategoricalCrossentropy' });
  const [xs, ys] = [
    tf.tensor2d(mnist.x.subarray(0, TRAIN * F), [TRAIN, F]),
    tf.tensor1d(mnist.y.subarray(0, TRAIN), 'float32'),
  ];
  await model.fit(xs, ys, { epochs: EPOCHS, batchSize: 128, verbose: 0 });
  tf.dispose([xs, ys]);

  const root = await mkdtemp(join(tmpdir(), 'tq-bench-infer-'));
  const registry = new ModelRegistry(new ArtifactStore(root));
  const closers: Array<() => Promise<void>> = [];
  try {
    const meta = {
      inputShape: [F],
      featureCount: F,
      classes: mnist.classes,
      lineage: { kind: 'trained' as const },
      weightDtype: 'float32',
    };
    const tfjsRef = await registry.register('mlp-tfjs', meta, (out) =>
      model.save(modelSaveHandler(out)).then(() => undefined),
    );
    const ref = await registry.register('mlp', meta, (out) => model.save(modelSaveHandler(out)).then(() => undefined));
    await attachOnnx(registry, ref, model, { quantize: 'int8', calibration: mnist.x.subarray(0, 1000 * F) });
    const floatBytes = await registry.readArtifact(ref, ONNX_ARTIFACT);
    const int8Bytes = await registry.readArtifact(ref, ONNX_INT8_ARTIFACT);

    const comparisons: Comparison[] = [];
    const add = (figure: string, value: number, baseline: number, baselineName: string) =>
      comparisons.push({ figure, unit: 'rows/s', value, baseline, baselineName, higherIsBetter: true });
    const session = async (pathOrBytes: string | Uint8Array, threads: number) => {
      const s = await ort.InferenceSession.create(pathOrBytes as string, {
        intraOpNumThreads: threads,
        logSeverityLevel: 3,
      });
      closers.push(() => s.release());
      return s;
    };
    const goals: Array<{ goal: string; value: string; met: boolean }> = [];
    const goalRatio = (goal: string, r: number, target: number) =>
      goals.push({ goal, value: `${fmt(r)}x`, met: r >= target });

    for (const threads of [1, 0]) {
      const label = threads === 1 ? '1 thread' : 'default threads';
      const engineF = new InferenceEngine({
        registry,
        cacheSize: 2,
        intraOpNumThreads: threads,
        preferInt8: false,
        defaultBatchSize: BATCH,
      });
      const engineQ = new InferenceEngine({
        registry,
        cacheSize: 2,
        intraOpNumThreads: threads,
        defaultBatchSize: BATCH,
      });
      closers.push(
        () => engineF.close(),
        () => engineQ.close(),
      );
      // Pairs measured apart, so only the two compared sessions are warm.
      const bareF = barePass(await session(floatBytes, threads), x, ROWS, F, 10);
      const bareQ = barePass(await session(int8Bytes, threads), x, ROWS, F, 10);
      const r = {
        ...(await measure({ engine: () => engineF.predict(ref, x, ROWS), bare: bareF })),
        ...(await measure({ engineInt8: () => engineQ.predict(ref, x, ROWS), bareInt8: bareQ })),
      };
      const q = await measure({ bare: bareF, bareInt8: bareQ });
      add(`engine (onnxruntime float32), ${label}`, r.engine!, r.bare!, 'bare InferenceSession.run');
      add(`engine (onnxruntime int8), ${label}`, r.engineInt8!, r.bareInt8!, 'bare InferenceSession.run int8');
      add(`int8 export, bare onnxruntime, ${label}`, q.bareInt8!, q.bare!, 'float32 export');
      goalRatio(`engine ≥ 0.9x bare onnxruntime (${label})`, ratio(r.engine!, r.bare!), 0.9);
      goalRatio(`int8 ≥ 1.3x float32 (${label})`, ratio(q.bareInt8!, q.bare!), 1.3);
    }

    // The other int8 forms, single-threaded, against float32 on the same data.
    const s1 = await session(floatBytes, 1);
    const variants = {
      'int8 qdq (default)': exportOnnx(model, {
        quantize: 'int8',
        calibration: mnist.x.subarray(0, 1000 * F),
        int8Scheme: 'qdq',
      }),
      'int8 integer (MatMulInteger)': exportOnnx(model, {
        quantize: 'int8',
        calibration: mnist.x.subarray(0, 1000 * F),
        int8Scheme: 'integer',
      }),
      'int8 dynamic (no calibration)': exportOnnx(model, { quantize: 'int8' }),
    };
    const contenders: Record<string, Pass> = { float: barePass(s1, x, ROWS, F, 10) };
    const accuracies: Array<[string, number]> = [
      ['float32', accuracy((await barePass(s1, xTest, mnist.rows - TRAIN, F, 10)()) as Float32Array, yTest)],
    ];
    for (const [name, bytes] of Object.entries(variants)) {
      const s = await session(bytes, 1);
      contenders[name] = barePass(s, x, ROWS, F, 10);
      accuracies.push([name, accuracy((await barePass(s, xTest, mnist.rows - TRAIN, F, 10)()) as Float32Array, yTest)]);
    }
    const v = await measure(contenders);
    for (const name of Object.keys(variants))
      add(`${name}, bare onnxruntime, 1 thread`, v[name]!, v.float!, 'float32 export');

    // tfjs: default predict (batches of 32) vs one large batch, and the engine on a version without ONNX.
    const tfRows = Math.min(ROWS, 10_000);
    const xt = x.subarray(0, tfRows * F);
    const engineT = new InferenceEngine({ registry, cacheSize: 1, defaultBatchSize: BATCH });
    closers.push(() => engineT.close());
    const predictWith =
      (batchSize?: number): Pass =>
      async () =>
        tf.tidy(() =>
          (model.predict(tf.tensor2d(xt, [tfRows, F]), batchSize ? { batchSize } : {}) as tf.Tensor).dataSync(),
        );
    const t = await measure(
      { default32: predictWith(), large: predictWith(BATCH), engine: () => engineT.predict(tfjsRef, xt, tfRows) },
      tfRows,
      3,
    );
    add(`tfjs predict, batchSize ${BATCH}`, t.large!, t.default32!, 'tfjs predict default (32)');
    add('engine (tfjs path, no ONNX)', t.engine!, t.large!, `tfjs predict batchSize ${BATCH}`);

    // The CNN (random weights): float32 vs int8 export, speed only.
    const cnn = digitsCnn();
    const cnnRows = Math.min(ROWS, 4000);
    const cf = await session(exportOnnx(cnn), 1);
    const cq = await session(exportOnnx(cnn, { quantize: 'int8', calibration: mnist.x.subarray(0, 500 * F) }), 1);
    const c = await measure({ float: barePass(cf, x, cnnRows, F, 10), int8: barePass(cq, x, cnnRows, F, 10) }, cnnRows);
    add('CNN int8 export, bare onnxruntime, 1 thread', c.int8!, c.float!, 'CNN float32 export');
    cnn.dispose();

    printContext({
      machine: `${cpus()[0]?.model ?? '?'} × ${cpus().length}, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      'tfjs backend': backend.name,
      onnxruntime: ort.env.versions.node ?? '?',
      data: `${ROWS} MNIST rows (the 10,000 digits repeated), batch ${BATCH}, best of ${REPEATS}; tfjs rows ${tfRows}; CNN rows ${cnnRows}`,
      model: `MLP 784-256-128-10 trained ${EPOCHS} epochs on ${TRAIN} digits; accuracy on the other ${mnist.rows - TRAIN}`,
    });
    printComparisons('Inference rows/s', comparisons);
    console.log('Accuracy on held-out MNIST (onnxruntime):');
    for (const [name, acc] of accuracies)
      console.log(
        `  ${name.padEnd(32)} ${(acc * 100).toFixed(2)} %  (${((acc - accuracies[0]![1]) * 100).toFixed(2)} points vs float32)`,
      );
    const worstDrop = Math.max(...accuracies.slice(1).map(([, a]) => accuracies[0]![1] - a));
    goals.push({
      goal: 'int8 accuracy change ≤ 1 point (worst int8 form)',
      value: `${(worstDrop * 100).toFixed(2)} points lost`,
      met: worstDrop <= 0.01,
    });
    console.log('\nGoals:');
    for (const { goal, value, met } of goals) console.log(`  ${met ? 'met    ' : 'NOT MET'}  ${goal}: ${value}`);
  } finally {
    for (const close of closers) await close();
    model.dispose();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
