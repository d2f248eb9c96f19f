import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { fitSchema, type LayerSpec } from '@tq/contracts';
import { buildModel, initBackend, loadBuiltinDataset, sliceRows, trainModel, type TabularData } from '@tq/ml';
import { fmt, printComparisons, printContext, type Comparison } from './lib/report';
import { trainFlopsPerSample } from './lib/train-flops';

/**
 * Training speed of the tfjs kernels (issue 5, goals), in one run on the same MNIST rows, through
 * trainModel (the product's training loop: computeGradients + Adam, batch 128):
 *  - MLP 784-256-128-10: stock tfjs wasm (a child process that never installs the fast kernels),
 *    wasm with the fast kernels (this process), and bench/numpy_mlp.py (hand-written numpy Adam
 *    loop, one BLAS thread); goals: fast ≥ 10× stock and ≥ 0.5× numpy;
 *  - CNN conv3x3x16 → maxpool → conv3x3x32 → maxpool → dense 10: stock (fails on wasm) vs fast,
 *    and its GFLOP/s (FLOPs from bench/lib/train-flops.ts) against two peaks measured in this run:
 *    the best single wasm matmul (stock xnnpack with cached weights, or the fast kernels' gemm) and
 *    numpy's 1-thread GEMM (AVX2 + FMA, which wasm's 128-bit SIMD without FMA cannot reach).
 * Each figure is the median of RUNS runs after a warm-up run; the machine is shared, so expect noise.
 */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const MLP_ROWS = 6400;
const CNN_ROWS = 1280;
const FIT = fitSchema.parse({
  epochs: 1,
  batchSize: 128,
  optimizer: 'adam',
  learningRate: 0.001,
  validationSplit: 0,
  seed: 1,
});
const MLP: LayerSpec[] = [
  { type: 'dense', units: 256, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 128, activation: 'relu' },
  { type: 'dense', units: 10, activation: 'softmax' },
] as LayerSpec[];
const CNN: LayerSpec[] = [
  { type: 'reshape', targetShape: [28, 28, 1], inputShape: [784] },
  { type: 'conv2d', filters: 16, kernelSize: 3, activation: 'relu' },
  { type: 'maxPooling2d', poolSize: 2 },
  { type: 'conv2d', filters: 32, kernelSize: 3, activation: 'relu' },
  { type: 'maxPooling2d', poolSize: 2 },
  { type: 'flatten' },
  { type: 'dense', units: 10, activation: 'softmax' },
] as LayerSpec[];

interface Speed {
  samplesPerSec: number;
  runs: number[];
  error?: string;
  flopsPerSample: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Median samples/s of trainModel over RUNS one-epoch runs (fresh model each), after one warm-up run. */
async function measure(layers: LayerSpec[], data: TabularData): Promise<Speed> {
  const runs: number[] = [];
  let flopsPerSample = 0;
  try {
    for (let i = 0; i <= RUNS; i++) {
      const model = buildModel(layers, { seed: FIT.seed });
      flopsPerSample = trainFlopsPerSample(model);
      try {
        const outcome = await trainModel({ model, data, fit: FIT });
        if (i > 0) runs.push(outcome.samplesPerSec);
      } finally {
        model.dispose();
      }
    }
  } catch (err) {
    // split always yields at least one element.
    return { samplesPerSec: Number.NaN, runs, error: (err as Error).message.split('\n')[0]!, flopsPerSample };
  }
  return { samplesPerSec: median(runs), runs, flopsPerSample };
}

/** Best GFLOP/s of one float32 matmul on this backend, same operands each time. */
function matmulPeak(n: number): number {
  const [a, b] = [tf.randomUniform([n, n]), tf.randomUniform([n, n])];
  tf.matMul(a, b).dispose();
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    tf.matMul(a, b).dataSync();
    rates.push((2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9);
  }
  tf.dispose([a, b]);
  return Math.max(...rates);
}

/** The stock figures, in a child that only requires the wasm backend (the fast kernels are never installed). */
async function stockChild(): Promise<void> {
  // Only this child loads the backend, and only as a side effect: a plain require.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend failed to initialise');
  const data = loadBuiltinDataset('mnist');
  const mlp = await measure(MLP, sliceRows(data, 0, MLP_ROWS));
  const cnn = await measure(CNN, sliceRows(data, 0, CNN_ROWS));
  // xnnpack's fully-connected operator keeps the packed weights when B does not change: its best case.
  console.log(`STOCK ${JSON.stringify({ mlp, cnn, peak: matmulPeak(1024) })}`);
}

interface Stock {
  mlp: Speed;
  cnn: Speed;
  peak: number;
}

function runStockChild(): Stock {
  const run = spawnSync(process.execPath, [__filename, '--stock'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 24,
  });
  const line = /^STOCK (.*)$/m.exec(run.stdout ?? '');
  if (run.status !== 0 || !line) throw new Error(`stock child failed (status ${run.status}): ${run.stdout}`);
  // JSON has no NaN: a failed measurement comes back as null.
  const stock = JSON.parse(line[1]!) as Stock;
  for (const s of [stock.mlp, stock.cnn]) s.samplesPerSec ??= Number.NaN;
  return stock;
}

/** bench/numpy_mlp.py on the same rows; undefined (with the reason printed) where python3/numpy is missing. */
function numpy(data: TabularData): { samplesPerSec: number; runs: number[]; gemmPeak: number } | undefined {
  let dir = __dirname;
  while (!existsSync(join(dir, 'bench', 'numpy_mlp.py')) && dirname(dir) !== dir) dir = dirname(dir);
  const script = join(dir, 'bench', 'numpy_mlp.py');
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const probe = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8', env });
  if (probe.error || probe.status !== 0) {
    console.log(
      `\nnote: numpy reference skipped: ${probe.error ? 'python3 not found' : 'numpy not importable'} (${(probe.stderr || String(probe.error)).trim().split('\n').pop()})`,
    );
    return undefined;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'tq-bench-'));
  try {
    writeFileSync(join(tmp, 'x.f32'), data.x);
    writeFileSync(join(tmp, 'y.i32'), data.y);
    const steps = Math.floor(data.rows / FIT.batchSize);
    const run = spawnSync(
      'python3',
      [
        script,
        '--x',
        join(tmp, 'x.f32'),
        '--y',
        join(tmp, 'y.i32'),
        '--steps',
        String(steps),
        '--repeats',
        String(RUNS),
      ],
      { encoding: 'utf8', env },
    );
    const peak = spawnSync('python3', [script, '--peak'], { encoding: 'utf8', env });
    if (run.status !== 0 || peak.status !== 0) throw new Error(`numpy_mlp.py failed: ${run.stderr}${peak.stderr}`);
    const res = JSON.parse(run.stdout) as { samples_per_s: number; runs: number[] };
    return {
      samplesPerSec: res.samples_per_s,
      runs: res.runs,
      gemmPeak: (JSON.parse(peak.stdout) as { gemm_gflops: number }).gemm_gflops,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--stock')) return stockChild();
  const data = loadBuiltinDataset('mnist');
  const stock = runStockChild();
  const backend = await initBackend('wasm');
  const mlp = await measure(MLP, sliceRows(data, 0, MLP_ROWS));
  const cnn = await measure(CNN, sliceRows(data, 0, CNN_ROWS));
  // 1000 rather than 1024: power-of-two rows alias in L1 and cost the SIMD gemm a third of its speed.
  const gemmPeak = matmulPeak(1000);
  const wasmPeak = Math.max(gemmPeak, stock.peak);
  const np = numpy(sliceRows(data, 0, MLP_ROWS));

  const runs = (s: Speed) => (s.error ? `fails: ${s.error}` : s.runs.map((r) => fmt(r)).join(', '));
  printContext({
    backend: `${backend.name}, fast kernels: ${backend.fastKernels.join(', ')}`,
    data: `MNIST, MLP ${MLP_ROWS} rows, CNN ${CNN_ROWS} rows, batch ${FIT.batchSize}, Adam lr ${FIT.learningRate}, median of ${RUNS} runs`,
    'MLP fast runs': runs(mlp),
    'MLP stock runs': runs(stock.mlp),
    'MLP numpy runs': np ? np.runs.map(fmt).join(', ') : 'skipped',
    'CNN fast runs': runs(cnn),
    'CNN stock runs': runs(stock.cnn),
    'FLOPs/sample': `MLP ${fmt(mlp.flopsPerSample)}, CNN ${fmt(cnn.flopsPerSample)} (fwd + dW + dX, 2 per MAC)`,
    'peaks (1 thread)': `wasm matmul: fast kernels 1000³ ${fmt(gemmPeak)}, stock xnnpack 1024³ (weights cached) ${fmt(stock.peak)} GFLOP/s; numpy GEMM 1024³ ${np ? fmt(np.gemmPeak) : 'n/a'} GFLOP/s`,
  });
  const gflops = (s: Speed) => (s.samplesPerSec * s.flopsPerSample) / 1e9;
  const rows: Comparison[] = [
    {
      figure: 'MLP train, fast wasm vs stock wasm (goal ≥ 10x)',
      unit: 'samples/s',
      value: mlp.samplesPerSec,
      baseline: stock.mlp.samplesPerSec,
      baselineName: 'stock tfjs wasm',
      higherIsBetter: true,
    },
    {
      figure: 'MLP train, fast wasm vs numpy Adam (goal ≥ 0.5x)',
      unit: 'samples/s',
      value: mlp.samplesPerSec,
      baseline: np?.samplesPerSec ?? Number.NaN,
      baselineName: np ? 'numpy, 1 thread' : 'skipped (no numpy)',
      higherIsBetter: true,
    },
    {
      figure: 'CNN train, fast wasm vs stock wasm',
      unit: 'samples/s',
      value: cnn.samplesPerSec,
      baseline: stock.cnn.samplesPerSec,
      baselineName: stock.cnn.error ? 'stock: fails' : 'stock tfjs wasm',
      higherIsBetter: true,
    },
    {
      figure: 'CNN train compute vs wasm matmul peak',
      unit: 'GFLOP/s',
      value: gflops(cnn),
      baseline: wasmPeak,
      baselineName: 'best wasm matmul',
      higherIsBetter: true,
    },
    {
      figure: 'CNN train compute vs numpy GEMM peak',
      unit: 'GFLOP/s',
      value: gflops(cnn),
      baseline: np?.gemmPeak ?? Number.NaN,
      baselineName: 'numpy GEMM, 1 thread',
      higherIsBetter: true,
    },
    {
      figure: 'MLP train compute vs wasm matmul peak',
      unit: 'GFLOP/s',
      value: gflops(mlp),
      baseline: wasmPeak,
      baselineName: 'best wasm matmul',
      higherIsBetter: true,
    },
  ];
  printComparisons('Training speed, tfjs wasm with and without the fast kernels', rows);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
