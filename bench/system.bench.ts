import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { loadConfig } from '@tq/config';
import { DEFAULT_JOB_OPTIONS, JobName, QueueName, inferRequestSchema } from '@tq/contracts';
import { fastKernelsInstalled, initBackend, loadBuiltinDataset, validationStart } from '@tq/ml';
import { connectionFromConfig } from '@tq/queue';
import { TestSystem, deleteKeys } from '../test/support/system';
import { ensureRedis } from '../tools/ensure-redis';
import { stopProcess } from '../tools/processes';
import { fmt, percentile, printComparisons, printContext, type Comparison } from './lib/report';

/**
 * The system against bare baselines, in one run on real Redis (issue 3, "Benchmarks"):
 *  1. MNIST MLP training through POST /v1/jobs/train vs plain model.fit in a bare process;
 *  2. submit → complete latency of a tiny infer job vs a bare BullMQ add → no-op worker;
 *  3. POST /v1/jobs/infer throughput (nobody consuming) vs bare Queue.add, same concurrency.
 * Completion is observed the same way for system and baseline: BullMQ QueueEvents "completed".
 * Sizes are bounded (env BENCH_LATENCY_JOBS, BENCH_SUBMISSIONS, BENCH_CONCURRENCY, BENCH_EPOCHS).
 */
const int = (v: string | undefined, d: number) => (v && Number.isInteger(Number(v)) && Number(v) > 0 ? Number(v) : d);
const EPOCHS = int(process.env.BENCH_EPOCHS, 3);
const LATENCY_JOBS = int(process.env.BENCH_LATENCY_JOBS, 200);
const SUBMISSIONS = int(process.env.BENCH_SUBMISSIONS, 2000);
const CONCURRENCY = int(process.env.BENCH_CONCURRENCY, 16);
const WARMUP = 10;
const MLP = [{ type: 'dense', units: 128, activation: 'relu', inputShape: [784] }, { type: 'dense', units: 10, activation: 'softmax' }];
const FIT = { epochs: EPOCHS, batchSize: 128, optimizer: 'adam', learningRate: 0.001, validationSplit: 0.1, seed: 1 } as const;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

interface BareFit { backend: string; kernels: string[]; trainRows: number; samplesPerSec: number; wallMs: number; valAccuracy: number }

/** Child mode: the baseline, plain tfjs model.fit on the same data and backend as the worker, nothing else running. */
async function bareFit(): Promise<BareFit> {
  const started = performance.now();
  const backend = await initBackend(loadConfig().TQ_BACKEND);
  const data = loadBuiltinDataset('mnist');
  const split = validationStart(data.rows, FIT.validationSplit);
  const f = data.featureCount;
  const [x, xv] = [tf.tensor2d(data.x.subarray(0, split * f), [split, f]), tf.tensor2d(data.x.subarray(split * f), [data.rows - split, f])];
  const [y, yv] = [tf.oneHot(tf.tensor1d(data.y.subarray(0, split), 'int32'), 10), tf.oneHot(tf.tensor1d(data.y.subarray(split), 'int32'), 10)];
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), tf.layers.dense({ units: 10, activation: 'softmax' })] });
  model.compile({ optimizer: tf.train.adam(FIT.learningRate), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  // Batch-loop time only (first batch start → last batch end per epoch): the worker's samplesPerSec also excludes validation.
  let trainMs = 0, epochStart = 0, lastBatchEnd = 0;
  const history = await model.fit(x, y, {
    epochs: FIT.epochs, batchSize: FIT.batchSize, shuffle: true, validationData: [xv, yv], verbose: 0,
    callbacks: { onEpochBegin: async () => { epochStart = performance.now(); }, onBatchEnd: async () => { lastBatchEnd = performance.now(); }, onEpochEnd: async () => { trainMs += lastBatchEnd - epochStart; } },
  });
  const valAcc = history.history.val_acc ?? history.history.val_accuracy ?? [];
  const result = { backend: backend.name, kernels: fastKernelsInstalled(backend.name), trainRows: split, samplesPerSec: (split * FIT.epochs) / (trainMs / 1000), wallMs: performance.now() - started, valAccuracy: Number(valAcc.at(-1)) };
  tf.dispose([x, xv, y, yv]);
  model.dispose();
  return result;
}

function runBareFit(): Promise<BareFit> {
  const child = spawn(process.execPath, [__filename, '--bare-fit'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  return new Promise((done, fail) => child.once('exit', (code) => {
    const line = out.split('\n').find((l) => l.startsWith('BARE_FIT '));
    if (code === 0 && line) done(JSON.parse(line.slice('BARE_FIT '.length)) as BareFit);
    else fail(new Error(`bare model.fit process exited ${code}: ${out.slice(-2000)}`));
  }));
}

/** Completion times of a queue's jobs by id, from QueueEvents (an event may beat the submit's reply: both orders work). */
class Completions {
  private readonly at = new Map<string, number | Error>();
  private readonly waiters = new Map<string, () => void>();
  private constructor(private readonly events: QueueEvents) {
    events.on('completed', ({ jobId }) => this.settle(jobId, performance.now()));
    events.on('failed', ({ jobId, failedReason }) => this.settle(jobId, new Error(`job ${jobId} failed: ${failedReason}`)));
  }
  static async open(queue: string, prefix: string, url: string): Promise<Completions> {
    const events = new QueueEvents(queue, { connection: connectionFromConfig({ REDIS_URL: url }), prefix });
    await events.waitUntilReady();
    return new Completions(events);
  }
  private settle(id: string, v: number | Error): void { this.at.set(id, v); this.waiters.get(id)?.(); }
  async wait(id: string, timeoutMs: number): Promise<number> {
    if (!this.at.has(id)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((r) => this.waiters.set(id, r)), new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`job ${id} not done after ${timeoutMs} ms`)), timeoutMs); })]).finally(() => { clearTimeout(timer); this.waiters.delete(id); });
    }
    const v = this.at.get(id)!;
    this.at.delete(id);
    if (v instanceof Error) throw v;
    return v;
  }
  close(): Promise<void> { return this.events.close(); }
}

/** `count` sequential submit → complete round trips after WARMUP unmeasured ones; milliseconds each. */
async function latencies(count: number, submit: () => Promise<string>, done: Completions): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < WARMUP + count; i++) {
    const t0 = performance.now();
    const id = await submit();
    const t1 = await done.wait(id, 60_000);
    if (i >= WARMUP) out.push(t1 - t0);
  }
  return out;
}

/** `total` submissions from `concurrency` clients at once, after WARMUP unmeasured ones; submissions per second. */
async function throughput(total: number, concurrency: number, submit: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < WARMUP; i++) await submit();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => { while (next++ < total) await submit(); }));
  return total / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const redis = await ensureRedis();
  process.env.REDIS_URL = redis.url; // TestSystem and loadConfig read it
  const load0 = loadavg()[0]!;
  console.log(`system bench: redis ${redis.url} (${redis.source}); bare model.fit first (${EPOCHS} epochs)...`);
  const bare = await runBareFit();
  const barePrefix = `tqbench-${randomUUID().slice(0, 8)}`;
  const connection = connectionFromConfig({ REDIS_URL: redis.url });
  const system = await TestSystem.start({ workers: 1 });
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const post = async (path: string, body: unknown): Promise<string> => {
      const res = await system.request('POST', path, body);
      if (res.status !== 202) throw new Error(`POST ${path} → ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    };
    const opened = async (queue: string, prefix = system.prefix) => { const c = await Completions.open(queue, prefix, redis.url); closers.push(() => c.close()); return c; };

    // 1. Training through the system.
    console.log('training through the system...');
    const trainDone = await opened(QueueName.Train);
    const t0 = performance.now();
    const trainId = await post('/v1/jobs/train', { model: { name: 'bench-mnist', layers: MLP }, dataset: { builtin: 'mnist' }, fit: FIT });
    const trainWallMs = (await trainDone.wait(trainId, 900_000)) - t0;
    const trained = (await system.request('GET', `/v1/jobs/${trainId}`)).body.result;

    // 2. Latency: a tiny iris model, one instance per job; baseline: a no-op job on a bare queue + worker.
    console.log(`infer latency: ${LATENCY_JOBS} jobs through the system, then bare BullMQ...`);
    const irisId = await post('/v1/jobs/train', { model: { name: 'bench-iris', layers: [{ type: 'dense', units: 16, activation: 'relu', inputShape: [4] }, { type: 'dense', units: 3, activation: 'softmax' }] }, dataset: { builtin: 'iris' }, fit: { epochs: 5, batchSize: 16, validationSplit: 0 } });
    await trainDone.wait(irisId, 120_000);
    const iris = (await system.request('GET', `/v1/jobs/${irisId}`)).body.result.model as { name: string; version: number };
    const inferBody = { model: iris, input: { instances: [IRIS_ROW] } };
    const inferDone = await opened(QueueName.Infer);
    const sysLat = await latencies(LATENCY_JOBS, () => post('/v1/jobs/infer', inferBody), inferDone);
    const payload = inferRequestSchema.parse(inferBody); // what the API puts in the queue
    const noopQueue = new Queue('noop', { connection, prefix: barePrefix });
    const noopWorker = new Worker('noop', async () => ({}), { connection, prefix: barePrefix });
    closers.push(() => noopWorker.close(), () => noopQueue.close());
    const noopDone = await opened('noop', barePrefix);
    const bareLat = await latencies(LATENCY_JOBS, async () => (await noopQueue.add('noop', payload, { ...DEFAULT_JOB_OPTIONS[JobName.Infer], jobId: randomUUID() })).id!, noopDone);

    // 3. Submit throughput with nobody consuming: stop the worker first.
    console.log(`submit throughput: ${SUBMISSIONS} submissions, ${CONCURRENCY} concurrent clients...`);
    await Promise.all(system.workers.map((w) => stopProcess(w, 'SIGTERM', 10_000)));
    const apiRate = await throughput(SUBMISSIONS, CONCURRENCY, () => post('/v1/jobs/infer', inferBody));
    const sysQueue = new Queue(QueueName.Infer, { connection, prefix: system.prefix });
    const bareQueue = new Queue(QueueName.Infer, { connection, prefix: barePrefix });
    closers.push(() => sysQueue.close(), () => bareQueue.close());
    const bareRate = await throughput(SUBMISSIONS, CONCURRENCY, () => bareQueue.add(JobName.Infer, payload, { ...DEFAULT_JOB_OPTIONS[JobName.Infer], jobId: `infer-${randomUUID()}` }));
    const [sysWaiting, bareWaiting] = [await sysQueue.getWaitingCount(), await bareQueue.getWaitingCount()];
    if (sysWaiting !== SUBMISSIONS + WARMUP || bareWaiting !== SUBMISSIONS + WARMUP) throw new Error(`queued ${sysWaiting} (API) and ${bareWaiting} (bare), expected ${SUBMISSIONS + WARMUP} each`);

    const trainSamples = bare.trainRows * EPOCHS;
    console.log('\ncontext:');
    printContext({
      machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}, load avg ${fmt(load0)} → ${fmt(loadavg()[0]!)}`,
      backend: `worker ${trained.backend}; bare process ${bare.backend} (fast kernels: ${bare.kernels.join(', ') || 'none'})`,
      training: `MNIST MLP 784-128-10, ${bare.trainRows} train rows x ${EPOCHS} epochs, batch 128, adam; val accuracy system ${fmt(trained.metrics.valAccuracy)}, bare ${fmt(bare.valAccuracy)}`,
      latency: `${LATENCY_JOBS} sequential jobs each after ${WARMUP} warm-up; system: POST /v1/jobs/infer (1 iris row, ${iris.name} v${iris.version}) → QueueEvents completed; bare: Queue.add → no-op Worker → completed`,
      throughput: `${SUBMISSIONS} submissions, ${CONCURRENCY} concurrent clients, no worker consuming; all ${SUBMISSIONS + WARMUP} of each counted waiting in Redis afterwards`,
    });
    const rows: Comparison[] = [
      { figure: 'train samples/s (batch loop)', unit: 'samples/s', value: trained.samplesPerSec, baseline: bare.samplesPerSec, baselineName: 'bare model.fit, batch loop', higherIsBetter: true },
      { figure: 'train samples/s (submit → complete)', unit: 'samples/s', value: trainSamples / (trainWallMs / 1000), baseline: trainSamples / (bare.wallMs / 1000), baselineName: 'bare process: load + fit', higherIsBetter: true },
      { figure: 'train wall time', unit: 's', value: trainWallMs / 1000, baseline: bare.wallMs / 1000, baselineName: 'bare process: load + fit', higherIsBetter: false },
      { figure: 'infer job latency p50', unit: 'ms', value: percentile(sysLat, 50), baseline: percentile(bareLat, 50), baselineName: 'bare BullMQ no-op job', higherIsBetter: false },
      { figure: 'infer job latency p99', unit: 'ms', value: percentile(sysLat, 99), baseline: percentile(bareLat, 99), baselineName: 'bare BullMQ no-op job', higherIsBetter: false },
      { figure: 'submit throughput', unit: 'jobs/s', value: apiRate, baseline: bareRate, baselineName: 'bare Queue.add', higherIsBetter: true },
    ];
    printComparisons('system vs bare baselines', rows);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    await system.stop();
    await deleteKeys(redis.url, `${barePrefix}:*`);
    await redis.stop();
  }
}

if (process.argv[2] === '--bare-fit') {
  bareFit().then((r) => { console.log(`BARE_FIT ${JSON.stringify(r)}`); process.exit(0); }, (err: unknown) => { console.error(err); process.exit(1); });
} else {
  main().then(() => process.exit(0), (err: unknown) => { console.error(err instanceof Error ? err.stack ?? err.message : err); process.exit(1); });
}
