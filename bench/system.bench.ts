import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { JobName, QueueName, buildEnvelope, jobOptionsOf, localJobMeta, type LayerSpec } from '@tq/contracts';
import { connectionFromConfig } from '@tq/queue';
import { TestSystem, deleteKeys } from '../test/support/system';
import { ensureRedis } from '../tools/ensure-redis';
import { stopProcess } from '../tools/processes';
import { runBareFit, type BareFit, type BareSpec } from './lib/bare-train';
import { Completions } from './lib/completions';
import { envInt } from './lib/env';
import { jsonPoster } from './lib/json-poster';
import { fmt, percentile, printComparisons, printContext, type Comparison } from './lib/report';
import { WARMUP, latencies, throughput } from './lib/submit-loops';

/**
 * The system against bare baselines, in one run on real Redis (issue 3, "Benchmarks"):
 *  1. MNIST MLP training through POST /v1/jobs/train vs plain model.fit in a bare process, and vs
 *     the worker's own loop (trainModel) in a bare process, which isolates the system's overhead;
 *  2. submit → complete latency of a tiny infer job vs a bare BullMQ add → no-op worker;
 *  3. POST /v1/jobs/infer throughput (nobody consuming) vs bare Queue.add, same concurrency.
 * Completion is observed the same way for system and baseline: BullMQ QueueEvents "completed".
 * Training runs are short (~1-3 s) on a shared 2-core machine, so each side runs BENCH_REPEATS times
 * and the median is compared. Sizes are bounded (env BENCH_LATENCY_JOBS, BENCH_SUBMISSIONS,
 * BENCH_CONCURRENCY, BENCH_EPOCHS, BENCH_REPEATS).
 */
const EPOCHS = envInt(process.env.BENCH_EPOCHS, 3);
const LATENCY_JOBS = envInt(process.env.BENCH_LATENCY_JOBS, 200);
const SUBMISSIONS = envInt(process.env.BENCH_SUBMISSIONS, 2000);
const CONCURRENCY = envInt(process.env.BENCH_CONCURRENCY, 16);
const REPEATS = envInt(process.env.BENCH_REPEATS, 3);
const MLP: LayerSpec[] = [
  { type: 'dense', units: 128, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];
const FIT = {
  epochs: EPOCHS,
  batchSize: 128,
  optimizer: 'adam',
  learningRate: 0.001,
  validationSplit: 0.1,
  seed: 1,
} as const;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const BARE: BareSpec = { layers: MLP, fit: { ...FIT, shuffle: true } };

const median = (xs: readonly number[]) => percentile(xs, 50);
const runs = (xs: readonly number[]) => xs.map(fmt).join(' / ');

async function main(): Promise<void> {
  const redis = await ensureRedis();
  process.env.REDIS_URL = redis.url; // TestSystem and loadConfig read it
  const load0 = loadavg()[0]!;
  console.log(
    `system bench: redis ${redis.url} (${redis.source}); bare model.fit and bare trainModel first (${EPOCHS} epochs)...`,
  );
  const bareRuns: BareFit[] = [],
    loopRuns: BareFit[] = [];
  for (let r = 0; r < REPEATS; r++) {
    bareRuns.push(await runBareFit('fit', BARE));
    loopRuns.push(await runBareFit('loop', BARE));
  }
  const bare = bareRuns[0]!;
  const barePrefix = `tqbench-${randomUUID().slice(0, 8)}`;
  const connection = connectionFromConfig({ REDIS_URL: redis.url });
  const system = await TestSystem.start({ workers: 1 });
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const http = jsonPoster(system.url, CONCURRENCY, system.clientHeaders());
    closers.push(async () => http.close());
    const post = http.post;
    const opened = async (queue: string, prefix = system.prefix) => {
      const c = await Completions.open(queue, prefix, redis.url);
      closers.push(() => c.close());
      return c;
    };

    // 1. Training through the system: the worker's first job (cold), then REPEATS warm ones.
    console.log(`training through the system (1 + ${REPEATS} jobs)...`);
    const trainDone = await opened(QueueName.Train);
    const sysRuns: Array<{ wallMs: number; samplesPerSec: number; valAccuracy: number; backend: string }> = [];
    for (let r = 0; r <= REPEATS; r++) {
      const t0 = performance.now();
      const trainId = await post('/v1/jobs/train', {
        model: { name: 'bench-mnist', layers: MLP },
        dataset: { builtin: 'mnist' },
        fit: FIT,
      });
      const wallMs = (await trainDone.wait(trainId, 900_000)) - t0;
      const { result } = (await system.request('GET', `/v1/jobs/${trainId}`)).body;
      sysRuns.push({
        wallMs,
        samplesPerSec: result.samplesPerSec,
        valAccuracy: result.metrics.valAccuracy,
        backend: result.backend,
      });
    }

    // 2. Latency: a tiny iris model, one instance per job; baseline: a no-op job on a bare queue + worker.
    console.log(`infer latency: ${LATENCY_JOBS} jobs through the system, then bare BullMQ...`);
    const irisId = await post('/v1/jobs/train', {
      model: {
        name: 'bench-iris',
        layers: [
          { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
          { type: 'dense', units: 3, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'iris' },
      fit: { epochs: 5, batchSize: 16, validationSplit: 0 },
    });
    await trainDone.wait(irisId, 120_000);
    const iris = (await system.request('GET', `/v1/jobs/${irisId}`)).body.result.model as {
      name: string;
      version: number;
    };
    const inferBody = { model: iris, input: { instances: [IRIS_ROW] } };
    const inferDone = await opened(QueueName.Infer);
    const sysLat = await latencies(LATENCY_JOBS, () => post('/v1/jobs/infer', inferBody), inferDone);
    // About what the API puts in the queue (it stores the rows as an artifact; a bare queue carries them inline).
    const payload = buildEnvelope(
      JobName.Infer,
      { model: iris, input: { stored: { rows: 1, features: IRIS_ROW.length } }, batchSize: 1024 },
      localJobMeta(),
    );
    const noopQueue = new Queue('noop', { connection, prefix: barePrefix });
    const noopWorker = new Worker('noop', async () => ({}), { connection, prefix: barePrefix });
    closers.push(
      () => noopWorker.close(),
      () => noopQueue.close(),
    );
    const noopDone = await opened('noop', barePrefix);
    const bareLat = await latencies(
      LATENCY_JOBS,
      async () => (await noopQueue.add('noop', payload, { ...jobOptionsOf(JobName.Infer), jobId: randomUUID() })).id!,
      noopDone,
    );

    // 3. Submit throughput with nobody consuming: stop the worker first.
    console.log(`submit throughput: ${SUBMISSIONS} submissions, ${CONCURRENCY} concurrent clients...`);
    await Promise.all(system.workers.map((w) => stopProcess(w, 'SIGTERM', 10_000)));
    const apiRate = await throughput(SUBMISSIONS, CONCURRENCY, () => post('/v1/jobs/infer', inferBody));
    const sysQueue = new Queue(QueueName.Infer, { connection, prefix: system.prefix });
    const bareQueue = new Queue(QueueName.Infer, { connection, prefix: barePrefix });
    closers.push(
      () => sysQueue.close(),
      () => bareQueue.close(),
    );
    const bareRate = await throughput(SUBMISSIONS, CONCURRENCY, () =>
      bareQueue.add(JobName.Infer, payload, { ...jobOptionsOf(JobName.Infer), jobId: `infer-${randomUUID()}` }),
    );
    const [sysWaiting, bareWaiting] = [await sysQueue.getWaitingCount(), await bareQueue.getWaitingCount()];
    if (sysWaiting !== SUBMISSIONS + WARMUP || bareWaiting !== SUBMISSIONS + WARMUP)
      throw new Error(`queued ${sysWaiting} (API) and ${bareWaiting} (bare), expected ${SUBMISSIONS + WARMUP} each`);

    const [sysCold, sysWarm] = [sysRuns[0]!, sysRuns.slice(1)];
    const sps = {
      sys: sysWarm.map((r) => r.samplesPerSec),
      fit: bareRuns.map((r) => r.samplesPerSec),
      loop: loopRuns.map((r) => r.samplesPerSec),
    };
    const wall = {
      sys: sysWarm.map((r) => r.wallMs / 1000),
      fit: bareRuns.map((r) => r.wallMs / 1000),
      loop: loopRuns.map((r) => r.wallMs / 1000),
    };
    console.log('\ncontext:');
    printContext({
      machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}, load avg ${fmt(load0)} → ${fmt(loadavg()[0]!)}`,
      backend: `worker ${sysRuns[0]!.backend}; bare processes ${bare.backend} (both via initBackend; fast kernels: ${bare.kernels.join(', ') || 'none'})`,
      training: `MNIST MLP 784-128-10, ${bare.trainRows} train rows x ${EPOCHS} epochs, batch 128, adam; ${REPEATS} runs each, medians compared`,
      'warm samples/s': `system (jobs 2..${REPEATS + 1} on one worker) ${runs(sps.sys)}; bare model.fit ${runs(sps.fit)}; bare trainModel ${runs(sps.loop)} (2nd training in each fresh process)`,
      'cold samples/s': `system (worker's 1st job) ${fmt(sysCold.samplesPerSec)}; bare model.fit ${runs(bareRuns.map((r) => r.coldSamplesPerSec))}; bare trainModel ${runs(loopRuns.map((r) => r.coldSamplesPerSec))}`,
      'wall s': `system submit → complete: 1st job ${fmt(sysCold.wallMs / 1000)}, then ${runs(wall.sys)}; fresh bare process (backend + load + 1st training, node start not counted): model.fit ${runs(wall.fit)}, trainModel ${runs(wall.loop)}`,
      'val accuracy': `system ${runs(sysRuns.map((r) => r.valAccuracy))}; bare model.fit ${runs(bareRuns.map((r) => r.valAccuracy))}; bare trainModel ${runs(loopRuns.map((r) => r.valAccuracy))}`,
      latency: `${LATENCY_JOBS} sequential jobs each after ${WARMUP} warm-up; system: POST /v1/jobs/infer (1 iris row, ${iris.name} v${iris.version}) → QueueEvents completed; bare: Queue.add → no-op Worker → completed`,
      throughput: `${SUBMISSIONS} submissions, ${CONCURRENCY} concurrent clients, no worker consuming; all ${SUBMISSIONS + WARMUP} of each counted waiting in Redis afterwards; bench-process CPU per submission: HTTP client ${fmt(apiRate.clientCpuMs)} ms, Queue.add ${fmt(bareRate.clientCpuMs)} ms`,
    });
    const rows: Comparison[] = [
      {
        figure: 'train samples/s (result, warm)',
        unit: 'samples/s',
        value: median(sps.sys),
        baseline: median(sps.fit),
        baselineName: 'bare model.fit, warm',
        higherIsBetter: true,
      },
      {
        figure: 'train samples/s (result, warm)',
        unit: 'samples/s',
        value: median(sps.sys),
        baseline: median(sps.loop),
        baselineName: 'bare trainModel (same loop), warm',
        higherIsBetter: true,
      },
      {
        figure: 'train wall time (submit → complete)',
        unit: 's',
        value: median(wall.sys),
        baseline: median(wall.fit),
        baselineName: 'fresh process: model.fit',
        higherIsBetter: false,
      },
      {
        figure: 'train wall time (submit → complete)',
        unit: 's',
        value: median(wall.sys),
        baseline: median(wall.loop),
        baselineName: 'fresh process: trainModel',
        higherIsBetter: false,
      },
      {
        figure: 'infer job latency p50',
        unit: 'ms',
        value: percentile(sysLat.total, 50),
        baseline: percentile(bareLat.total, 50),
        baselineName: 'bare BullMQ no-op job',
        higherIsBetter: false,
      },
      {
        figure: 'infer job latency p99',
        unit: 'ms',
        value: percentile(sysLat.total, 99),
        baseline: percentile(bareLat.total, 99),
        baselineName: 'bare BullMQ no-op job',
        higherIsBetter: false,
      },
      {
        figure: '  of which submit call p50',
        unit: 'ms',
        value: percentile(sysLat.submit, 50),
        baseline: percentile(bareLat.submit, 50),
        baselineName: 'POST → 202 vs Queue.add',
        higherIsBetter: false,
      },
      {
        figure: 'submit throughput',
        unit: 'jobs/s',
        value: apiRate.rate,
        baseline: bareRate.rate,
        baselineName: 'bare Queue.add',
        higherIsBetter: true,
      },
    ];
    printComparisons('system vs bare baselines', rows);
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    await system.stop();
    await deleteKeys(redis.url, `${barePrefix}:*`);
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
