import { readFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3TestServer } from '../libs/storage/test/s3-test-server';
import { TestSystem } from '../test/support/system';
import { envInt } from './lib/env';
import { fmt, printComparisons, printContext, type Comparison } from './lib/report';

/**
 * Issue 12's goals, one run (`npm run bench -- fleet`):
 * 1. scale-out: a sharded infer job over BENCH_ROWS (400,000) rows × 32 features with 2 worker
 *    processes (onnxruntime 1 thread each) vs 1 worker, rows/s (goal ≥ 1.6×);
 * 2. memory: the peak RSS (VmHWM) of a fresh worker inferring BENCH_BIG_ROWS (1,000,000) × 32
 *    (goal < 300 MB), next to the table's size as float32;
 * 3. S3 vs local: upload → train → infer end to end on an S3 server on loopback (s3rver) vs the
 *    local folder (goal ≤ 1.3× the local time).
 */
const FEATURES = 32;
const ROWS = envInt(process.env.BENCH_ROWS, 400_000);
const BIG_ROWS = envInt(process.env.BENCH_BIG_ROWS, 1_000_000);
const E2E_ROWS = envInt(process.env.BENCH_E2E_ROWS, 100_000);
const LAYERS = [
  { type: 'dense', units: 64, activation: 'relu' },
  { type: 'dense', units: 32, activation: 'relu' },
  { type: 'dense', units: 2, activation: 'softmax' },
];
/** Node flags of the worker whose memory is measured (e.g. a V8 heap cap: --max-old-space-size=128). */
const WORKER_NODE_OPTIONS = process.env.BENCH_WORKER_NODE_OPTIONS;
const APP_ENV = { LOG_LEVEL: 'error', MAX_UPLOAD_BYTES: String(1 << 30), ORT_INTRA_OP_THREADS: '1' };

/** A CSV of `rows` rows × FEATURES features and a label, in chunks (a 1M-row table is ~200 MB). */
function csvChunks(rows: number, seed: number): string[] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const chunks = [[...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',') + '\n'];
  for (let start = 0; start < rows; start += 10_000) {
    const lines: string[] = [];
    for (let r = start; r < Math.min(rows, start + 10_000); r++) {
      const x = Array.from({ length: FEATURES }, next);
      const label = x[0]! + x[1]! - x[2]! > 0.5 ? 'a' : 'b';
      lines.push(`${x.map((v) => v.toFixed(3)).join(',')},${label}`);
    }
    chunks.push(lines.join('\n') + '\n');
  }
  return chunks;
}

async function upload(system: TestSystem, name: string, chunks: string[]): Promise<string> {
  const form = new FormData();
  form.append('file', new Blob(chunks), name);
  form.append('labelColumn', 'label');
  const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form }).catch((err: unknown) => {
    throw new Error(`upload ${name}: ${String(err)}`, { cause: err });
  });
  const info = (await res.json()) as { id: string; status: string };
  if (res.status !== 201) throw new Error(`upload ${name}: ${res.status} ${JSON.stringify(info)}`);
  return info.id;
}

async function train(system: TestSystem, datasetId: string): Promise<{ name: string; version: number }> {
  const res = await system.request('POST', '/v1/jobs/train', {
    model: { name: 'bench-fleet', layers: LAYERS },
    dataset: { id: datasetId },
    fit: { epochs: 3, batchSize: 256, validationSplit: 0.1, seed: 1 },
  });
  if (res.status !== 202) throw new Error(`train: ${JSON.stringify(res.body)}`);
  const job = await system.waitForJob(res.body.id, undefined, 900_000);
  if (job.state !== 'completed') throw new Error(`train: ${JSON.stringify(job)}`);
  return job.result.model;
}

/** An infer job over a dataset: wall seconds from submit to completion, and its result. */
async function infer(
  system: TestSystem,
  model: { name: string; version: number },
  datasetId: string,
): Promise<{ seconds: number; result: { rows: number; rowsPerSec: number; shards?: number } }> {
  const t0 = performance.now();
  const res = await system.request('POST', '/v1/jobs/infer', { model, input: { dataset: { id: datasetId } } });
  if (res.status !== 202) throw new Error(`infer: ${JSON.stringify(res.body)}`);
  const job = await system.waitForJob(res.body.id, undefined, 1_800_000);
  if (job.state !== 'completed') throw new Error(`infer: ${JSON.stringify(job)}`);
  return { seconds: (performance.now() - t0) / 1000, result: job.result };
}

/** Peak resident set of a process (VmHWM), bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) * 1024;
}

// The tables are made before the system starts: making one blocks this process's event loop for
// seconds, and a keep-alive socket the API closed meanwhile would be reused for the upload (EPIPE).
async function scaleOut(comparisons: Comparison[]): Promise<void> {
  const [trainCsv, scaleCsv] = [csvChunks(20_000, 1), csvChunks(ROWS, 2)];
  const system = await TestSystem.start({ workers: 1, env: APP_ENV });
  try {
    const model = await train(system, await upload(system, 'train.csv', trainCsv));
    const table = await upload(system, 'scale.csv', scaleCsv);
    const one = await infer(system, model, table);
    console.log(
      `1 worker: ${fmt(ROWS / one.seconds)} rows/s (${fmt(one.seconds)} s, ${one.result.shards ?? 1} shards)`,
    );
    system.addWorker();
    await new Promise((r) => setTimeout(r, 3000)); // the new worker connects and loads its kernels
    const two = await infer(system, model, table);
    console.log(`2 workers: ${fmt(ROWS / two.seconds)} rows/s (${fmt(two.seconds)} s)`);
    comparisons.push({
      figure: `sharded infer, ${fmt(ROWS)} rows x ${FEATURES}, submit to done`,
      unit: 'rows/s',
      value: ROWS / two.seconds,
      baseline: ROWS / one.seconds,
      baselineName: '1 worker process',
      higherIsBetter: true,
    });
  } finally {
    await system.stop();
  }
}

async function memory(): Promise<{ peak: number; idle: number; tableBytes: number; rows: number }> {
  const [trainCsv, bigCsv] = [csvChunks(20_000, 1), csvChunks(BIG_ROWS, 3)];
  const system = await TestSystem.start({ workers: 1, env: APP_ENV });
  try {
    const model = await train(system, await upload(system, 'train.csv', trainCsv));
    const big = await upload(system, 'big.csv', bigCsv);
    // A fresh worker does the inference alone, so its peak is the job's, not the training's.
    const fresh = system.addWorker(WORKER_NODE_OPTIONS ? { NODE_OPTIONS: WORKER_NODE_OPTIONS } : {});
    system.workers[0]!.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 3000));
    const idle = await peakRss(fresh.pid!);
    const run = await infer(system, model, big);
    const peak = await peakRss(fresh.pid!);
    console.log(
      `1 worker, ${fmt(BIG_ROWS)} rows: ${fmt(run.seconds)} s, peak RSS ${fmt(peak / 2 ** 20)} MiB ` +
        `(${fmt(idle / 2 ** 20)} MiB started and idle)`,
    );
    return { peak, idle, tableBytes: BIG_ROWS * FEATURES * 4, rows: BIG_ROWS };
  } finally {
    await system.stop();
  }
}

/** upload → train → infer, seconds, on the given store. */
async function endToEnd(env: Record<string, string>): Promise<number> {
  const [trainCsv, inferCsv] = [csvChunks(20_000, 1), csvChunks(E2E_ROWS, 4)];
  const system = await TestSystem.start({ workers: 1, env: { ...APP_ENV, ...env } });
  try {
    const t0 = performance.now();
    const model = await train(system, await upload(system, 'train.csv', trainCsv));
    await infer(system, model, await upload(system, 'infer.csv', inferCsv));
    return (performance.now() - t0) / 1000;
  } finally {
    await system.stop();
  }
}

async function main(): Promise<void> {
  const comparisons: Comparison[] = [];
  console.log(`fleet bench: scale-out on ${fmt(ROWS)} rows...`);
  await scaleOut(comparisons);
  console.log(`memory on ${fmt(BIG_ROWS)} rows...`);
  const mem = await memory();
  console.log('end to end, local then S3...');
  const local = await endToEnd({ BLOB_STORE: 'local' });
  const s3 = await S3TestServer.start('tq-bench-fleet');
  let remote: number;
  try {
    remote = await endToEnd({
      ...s3.appEnv(),
      ARTIFACT_DIR: join(tmpdir(), `tq-bench-fleet-${process.pid}`),
    });
  } finally {
    await s3.stop();
  }
  comparisons.push({
    figure: `upload + train + infer ${fmt(E2E_ROWS)} rows, S3 store`,
    unit: 's',
    value: remote,
    baseline: local,
    baselineName: 'local folder',
    higherIsBetter: false,
  });
  printComparisons('fleet (issue 12 goals: 2 workers >= 1.6x; S3 <= 1.3x local)', comparisons);
  console.log(
    `\npeak RSS of a worker inferring ${fmt(mem.rows)} rows x ${FEATURES}: ${fmt(mem.peak / 2 ** 20)} MiB ` +
      `(goal < 300 MB); the same worker started and idle: ${fmt(mem.idle / 2 ** 20)} MiB; ` +
      `the table as float32 is ${fmt(mem.tableBytes / 2 ** 20)} MiB`,
  );
  printContext({
    machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}`,
    model: `MLP ${FEATURES}-64-32-2, onnxruntime 1 thread per worker; S3: s3rver on loopback`,
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
