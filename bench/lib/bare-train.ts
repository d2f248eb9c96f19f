import { spawn } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { loadConfig } from '@tq/config';
import type { FitSpec, LayerSpec } from '@tq/contracts';
import { buildModel, initBackend, loadBuiltinDataset, trainModel, validationStart } from '@tq/ml';

/**
 * Training baselines in a fresh process on MNIST, with the same data, backend and kernels as the
 * worker (initBackend) and nothing else running. They exist so the system's training figures have
 * something to be compared with that pays no queue, HTTP or worker cost. Each process trains twice
 * (cold, then warm). Modes:
 *  - 'fit': plain tfjs model.fit, timed as a whole with no callbacks and no validationData (async
 *    callbacks alone halve model.fit's speed here: measured 6.3k vs 13-16k samples/s); validation
 *    accuracy is evaluated after the timed part; Adam, categorical cross-entropy, 10 classes;
 *  - 'loop': the worker's own trainModel, so system vs loop isolates the system's cost.
 * This file is also the child's entry point (run with node: `bare-train.js <mode> <spec json>`).
 */
export type BareMode = 'fit' | 'loop';
export interface BareSpec {
  layers: LayerSpec[];
  fit: FitSpec;
}
export interface BareFit {
  backend: string;
  kernels: string[];
  trainRows: number;
  /** The process's first training (cold: wasm code and kernels warm up during it). */
  coldSamplesPerSec: number;
  /** backend init + data load + the first training, from inside the process. */
  wallMs: number;
  /** A second training of a fresh model in the same process (warm). */
  samplesPerSec: number;
  valAccuracy: number;
}
type TabularData = ReturnType<typeof loadBuiltinDataset>;

/** Runs one baseline in a fresh node process and returns what it measured. */
export function runBareFit(mode: BareMode, spec: BareSpec): Promise<BareFit> {
  const child = spawn(process.execPath, [__filename, mode, JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((done, fail) =>
    child.once('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BARE_FIT '));
      if (code === 0 && line) done(JSON.parse(line.slice('BARE_FIT '.length)) as BareFit);
      else fail(new Error(`bare ${mode} process exited ${code}: ${out.slice(-2000)}`));
    }),
  );
}

/** Child side: backend, data, a cold training, then a warm one. */
async function bareFit(mode: BareMode, spec: BareSpec): Promise<BareFit> {
  const started = performance.now();
  const backend = await initBackend(loadConfig().TQ_BACKEND);
  const data = loadBuiltinDataset('mnist');
  const cold = await trainOnce(mode, spec, data);
  const wallMs = performance.now() - started;
  const warm = await trainOnce(mode, spec, data);
  return {
    backend: backend.name,
    kernels: backend.fastKernels,
    trainRows: validationStart(data.rows, spec.fit.validationSplit),
    coldSamplesPerSec: cold.samplesPerSec,
    wallMs,
    samplesPerSec: warm.samplesPerSec,
    valAccuracy: warm.valAccuracy,
  };
}

async function trainOnce(
  mode: BareMode,
  { layers, fit }: BareSpec,
  data: TabularData,
): Promise<{ samplesPerSec: number; valAccuracy: number }> {
  const model = buildModel(layers, { seed: fit.seed });
  try {
    if (mode === 'loop') {
      const out = await trainModel({ model, data, fit });
      return { samplesPerSec: out.samplesPerSec, valAccuracy: out.metrics.valAccuracy ?? Number.NaN };
    }
    const [split, f] = [validationStart(data.rows, fit.validationSplit), data.featureCount];
    const [x, xv] = [
      tf.tensor2d(data.x.subarray(0, split * f), [split, f]),
      tf.tensor2d(data.x.subarray(split * f), [data.rows - split, f]),
    ];
    const [y, yv] = [
      tf.oneHot(tf.tensor1d(data.y.subarray(0, split), 'int32'), 10),
      tf.oneHot(tf.tensor1d(data.y.subarray(split), 'int32'), 10),
    ];
    model.compile({
      optimizer: tf.train.adam(fit.learningRate),
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const t0 = performance.now();
    await model.fit(x, y, { epochs: fit.epochs, batchSize: fit.batchSize, shuffle: true, verbose: 0 });
    const samplesPerSec = (split * fit.epochs) / ((performance.now() - t0) / 1000);
    const scores = model.evaluate(xv, yv, { batchSize: 1024 }) as tf.Scalar[];
    const valAccuracy = (await scores[1]!.data())[0]!;
    tf.dispose([x, xv, y, yv, ...scores]);
    return { samplesPerSec, valAccuracy };
  } finally {
    model.dispose();
  }
}

if (require.main === module) {
  const mode: BareMode = process.argv[2] === 'loop' ? 'loop' : 'fit';
  bareFit(mode, JSON.parse(process.argv[3] ?? '') as BareSpec).then(
    (r) => {
      console.log(`BARE_FIT ${JSON.stringify(r)}`);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
