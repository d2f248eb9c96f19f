import { execFileSync } from 'node:child_process';
import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { attachOnnx, InferenceEngine, initBackend, mulberry32, ONNX_ARTIFACT } from '@tq/ml';
import { BatchedPredictor } from '@tq/serving';
import { TENSOR_CONTENT_TYPE, tensorBytesOf, tensorRowsOf } from '@tq/contracts';
import { ArtifactStore, createOnceSecret, ModelRegistry, modelSaveHandler, ProcessVersionMetaCache } from '@tq/storage';
import { TestSystem } from '../test/support/system';
import { envInt } from './lib/env';
import { cpuSeconds } from './lib/proc-cpu';
import { digitsCnn, mlp } from './lib/models';
import { percentile, printComparisons, printContext, type Comparison } from './lib/report';
import { batchesBetween, batchTotals } from './lib/serve-batches';
import { wrkInstalled, wrkPost } from './lib/wrk';

/**
 * Online serving (issue 10 goals), one run, on real processes (TestSystem: the API, two serve
 * replicas), three untrained models (speed only), float32 ONNX: an MLP 784-256-128-10, where a
 * row costs onnxruntime 25 µs and the request's HTTP and JSON work dominates, a wide MLP
 * 784-2048-2048-10 (0.57 ms a row: inference dominates), and the CNN of bench/compress (two 3x3
 * convolutions over 28x28x1). For each model:
 *  - batching gain: predicts/s at concurrency 32 on a replica with dynamic batching vs the same
 *    replica with SERVE_MAX_BATCH_SIZE=1 (goal ≥ 3x, p99 not worse), once with a JSON body (a row
 *    is ~14 KB of JSON) and once with binary rows (application/octet-stream, 3,136 bytes), and
 *    where wrk is installed twice more, binary rows then JSON sent by wrk (a C client: Node's http
 *    client costs as much CPU a request as the replica, on the same cores; lib/wrk.ts);
 *  - overhead: p50 of a batch-1 predict over HTTP (sequential, to the replica) vs bare
 *    InferenceSession.run of the same row in a loop (goal ≤ +1 ms);
 *  - the batcher alone: the same gain in this process, no HTTP (what batching gives where nothing
 *    but the engine costs).
 * With the MLP, on the batching replica:
 *  - HTTP layer: predicts/s at concurrency 32 through the replica's client door (an API key checked,
 *    the tenant's rate, per-alias metrics) vs its serve-key door (node:http, the body's checks and the
 *    batcher: the bare server) (goal ≥ 0.7x); through the API (its hop to the replica) beside it;
 *  - API responsiveness: p99 of GET /v1/jobs/:id idle vs during a burst of predicts sent to the
 *    replica (goal ≤ 2x), and during bursts sent through the API (JSON, then binary rows).
 * Every process shares this machine's cores with the load generator; BENCH_PIN=1 puts the API on
 * the first core and everything else on the others (as if the API had a host of its own),
 * BENCH_PIN=replicas the replicas (as if the clients had one: see pin()).
 * The API runs with its default API_MAX_CONCURRENT_PREDICTS (set it in this process's environment
 * to measure another).
 * Env: BENCH_SERVE_SECONDS (default 3) per phase, BENCH_CONCURRENCY (32), BENCH_PIN,
 * BENCH_MAX_BATCH (the concurrency) and BENCH_MAX_DELAY_MS (2) of the batching replica and batcher,
 * BENCH_ORT_SPINNING (on or off: the replicas' ORT_ALLOW_SPINNING; unset, a replica's default: off).
 */
const SECONDS = envInt(process.env.BENCH_SERVE_SECONDS, 3);
const CONCURRENCY = envInt(process.env.BENCH_CONCURRENCY, 32);
const PIN = process.env.BENCH_PIN;
if (PIN !== undefined && PIN !== '1' && PIN !== 'replicas')
  throw new Error(`BENCH_PIN is 1 (the API on core 0) or replicas (the replicas on core 0), got ${PIN}`);
/**
 * The batching replica's (and the in-process batcher's) SERVE_MAX_BATCH_SIZE (default: the
 * concurrency) and SERVE_MAX_DELAY_MS. Measured: a batch size above the concurrency makes every
 * batch wait its whole delay (the batch never fills); in process that cost the MLP 0.38x.
 */
const MAX_BATCH = envInt(process.env.BENCH_MAX_BATCH, CONCURRENCY);
const MAX_DELAY_MS = envInt(process.env.BENCH_MAX_DELAY_MS, 2);
const ORT_SPINNING = process.env.BENCH_ORT_SPINNING;
if (ORT_SPINNING !== undefined && ORT_SPINNING !== 'on' && ORT_SPINNING !== 'off')
  throw new Error(`BENCH_ORT_SPINNING is on or off, got ${ORT_SPINNING}`);
const spinning: Record<string, string> = ORT_SPINNING ? { ORT_ALLOW_SPINNING: ORT_SPINNING } : {};
/** wrk drives the replicas too where it is installed (apt-get install wrk): see lib/wrk.ts. */
const WRK = wrkInstalled();
const F = 784;
const pathOf = (name: string) => `/v1/models/${name}/versions/1/predict`;

/** The three models (784 inputs: an MNIST image). */
const MODELS: Record<string, () => tf.Sequential> = {
  mlp: () => mlp(F, [256, 128]),
  wide: () => mlp(F, [2048, 2048]),
  cnn: digitsCnn,
};

interface Load {
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

type Call = () => Promise<number>;

/**
 * `concurrency` loops calling `call` for `seconds`: answers/s and latency percentiles (ms) of the
 * answers `ok` accepts; the rest, socket errors included, are counted in `errors` (printed).
 */
async function load(
  call: Call,
  concurrency: number,
  seconds: number,
  ok: (status: number) => boolean = (status) => status === 200,
): Promise<Load> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        // A socket error (a reset, a refused connection) counts as an error, as wrk counts it.
        const status = await call().catch(() => 0);
        if (ok(status)) latencies.push(performance.now() - t);
        else errors++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  return {
    perSecond: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

function poster(base: string, headers: Record<string, string>) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const call =
    (method: string, path: string, body?: string | Buffer): Call =>
    () =>
      new Promise((resolve, reject) => {
        const req = request(
          base + path,
          {
            method,
            agent,
            headers: {
              ...headers,
              ...(body
                ? {
                    'content-type': typeof body === 'string' ? 'application/json' : TENSOR_CONTENT_TYPE,
                    'content-length': Buffer.byteLength(body),
                  }
                : {}),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.once('error', reject).end(body);
      });
  return { call, close: () => agent.destroy(), base, headers };
}

type Poster = ReturnType<typeof poster>;

/** `body` POSTed to `path` through `p`'s base URL and headers by wrk, at CONCURRENCY for SECONDS. */
function wrkLoad(p: Poster, path: string, body: string | Buffer, contentType: string): Promise<Load> {
  return wrkPost({
    url: p.base + path,
    headers: p.headers,
    body,
    contentType,
    connections: CONCURRENCY,
    seconds: SECONDS,
  });
}

/** p50 of bare InferenceSession.run on one row, in a loop for SECONDS (the exported graph takes flat rows). */
async function bareRun(onnx: Uint8Array, row: number[]): Promise<number> {
  const session = await ort.InferenceSession.create(onnx);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', Float32Array.from(row), [1, row.length]) };
  const times: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t);
  }
  await session.release();
  return percentile(times, 50);
}

/** The batching and overhead figures of one model, on the two replicas, for a JSON body and for binary rows. */
async function replicaFigures(
  name: string,
  registry: ModelRegistry,
  replicas: { batching: Poster; single: Poster },
  bodies: { json: string; binary: Buffer },
  row: number[],
): Promise<{ comparisons: Comparison[]; errors: string; batches: string }> {
  const path = pathOf(name);
  // Warm-up: the model loaded in both, and each body at the measured concurrency, so that the
  // first phase does not pay for the first full batches (onnxruntime's buffers for their shape) or
  // code not yet optimized. Before, 1 s at concurrency 4, JSON only. The effect was not measured
  // apart: the spread between runs (the README's figures) is larger.
  for (const replica of [replicas.batching, replicas.single])
    for (const body of [bodies.json, bodies.binary]) await load(replica.call('POST', path, body), CONCURRENCY, 1);
  const comparisons: Comparison[] = [];
  const errors: string[] = [];
  const batches: string[] = [];
  const baselineName = 'same replica, SERVE_MAX_BATCH_SIZE=1';
  // The replicas' throughput as Node's http client drives them, then (binary rows) as wrk does.
  const runs: [string, (p: Poster) => Promise<Load>][] = [
    ['JSON', (p) => load(p.call('POST', path, bodies.json), CONCURRENCY, SECONDS)],
    ['binary rows', (p) => load(p.call('POST', path, bodies.binary), CONCURRENCY, SECONDS)],
  ];
  if (WRK) {
    const viaWrk = (body: string | Buffer, contentType: string) => (p: Poster) => wrkLoad(p, path, body, contentType);
    runs.push(['binary rows, wrk', viaWrk(bodies.binary, TENSOR_CONTENT_TYPE)]);
    runs.push(['JSON, wrk', viaWrk(bodies.json, 'application/json')]);
  }
  for (const [kind, run] of runs) {
    const before = await batchTotals(replicas.batching.base);
    const withBatching = await run(replicas.batching);
    batches.push(`${kind}: ${batchesBetween(before, await batchTotals(replicas.batching.base))}`);
    const without = await run(replicas.single);
    errors.push(`${withBatching.errors}/${without.errors}`);
    comparisons.push(
      {
        figure: `${name}, ${kind}: predicts/s at concurrency ${CONCURRENCY} (goal ≥ 3x)`,
        unit: '/s',
        value: withBatching.perSecond,
        baseline: without.perSecond,
        baselineName,
        higherIsBetter: true,
      },
      {
        figure: `${name}, ${kind}: p99 at concurrency ${CONCURRENCY} (goal: not worse)`,
        unit: 'ms',
        value: withBatching.p99,
        baseline: without.p99,
        baselineName,
        higherIsBetter: false,
      },
    );
  }
  const sequential = await load(replicas.single.call('POST', path, bodies.json), 1, SECONDS);
  const meta = await registry.getVersion({ name, version: 1 });
  const bare = await bareRun(await registry.readArtifact(meta, ONNX_ARTIFACT), row);
  comparisons.push({
    figure: `${name}: p50 batch-1 predict over HTTP, JSON (goal ≤ +1 ms)`,
    unit: 'ms',
    value: sequential.p50,
    baseline: bare,
    baselineName: 'bare session.run loop',
    higherIsBetter: false,
  });
  return { errors: errors.join(' '), comparisons, batches: batches.join('; ') };
}

/**
 * The batcher alone, in this process (no HTTP, no JSON): CONCURRENCY loops calling
 * BatchedPredictor.predict with binary rows, batching (MAX_BATCH rows, MAX_DELAY_MS) vs
 * SERVE_MAX_BATCH_SIZE=1. What batching gains where nothing but the engine costs, beside what the
 * replica over HTTP gains.
 */
async function batcherAlone(store: ArtifactStore, name: string, binary: Buffer): Promise<Comparison> {
  // Metadata cached in memory, as a replica caches it (nothing changes it here).
  const registry = new ModelRegistry(store.forTenant('default'), new ProcessVersionMetaCache());
  const engine = new InferenceEngine({ registry, cacheSize: 4 });
  const meta = await registry.getVersion({ name, version: 1 });
  const body = tensorRowsOf(binary);
  const rate = async (maxBatchSize: number, maxDelayMs: number) => {
    const predictor = new BatchedPredictor(engine, { maxBatchSize, maxDelayMs, maxQueueRows: 4096, timeoutMs: 10_000 });
    const call = () => predictor.predict('default', meta, body).then(() => 200);
    await load(call, 4, 1);
    const figures = await load(call, CONCURRENCY, SECONDS);
    predictor.close();
    return figures.perSecond;
  };
  const batched = await rate(MAX_BATCH, MAX_DELAY_MS);
  const single = await rate(1, 0);
  await engine.close();
  return {
    figure: `${name}: predicts/s at concurrency ${CONCURRENCY}, the batcher alone (in process)`,
    unit: '/s',
    value: batched,
    baseline: single,
    baselineName: 'same, SERVE_MAX_BATCH_SIZE=1',
    higherIsBetter: true,
  };
}

/**
 * BENCH_PIN=1: the API alone on core 0, this process (and the load generators it starts) and the
 * replicas on the rest. BENCH_PIN=replicas: the two replicas on core 0 (every thread), the API,
 * this process and its load generators on the rest, as if the clients had a machine of their own.
 */
function pin(system: TestSystem, replicas: (number | undefined)[]): void {
  const n = cpus().length;
  if (n < 2) throw new Error('BENCH_PIN needs 2 cores or more');
  const rest = `1-${n - 1}`;
  const [alone, others] =
    PIN === 'replicas' ? [replicas, [process.pid, system.apiPid]] : [[system.apiPid], [process.pid, ...replicas]];
  for (const pid of alone) if (pid) execFileSync('taskset', ['-acp', '0', String(pid)]);
  for (const pid of others) if (pid) execFileSync('taskset', ['-acp', rest, String(pid)]);
}

async function main(): Promise<void> {
  await initBackend();
  // The tenant's request rate (1,000/s by default) is not what is measured.
  const unlimited = { TENANT_MAX_REQUESTS_PER_SECOND: '1000000', TENANT_REQUEST_BURST: '1000000' };
  const system = await TestSystem.start({ workers: 0, env: unlimited });
  try {
    const store = new ArtifactStore(system.artifactDir);
    const registry = new ModelRegistry(store.forTenant('default'));
    for (const [name, build] of Object.entries(MODELS)) {
      const model = build();
      const meta = await registry.register(
        name,
        {
          inputShape: model.inputs[0]!.shape.slice(1) as number[],
          featureCount: F,
          classes: Array.from({ length: 10 }, (_, i) => String(i)),
          lineage: { kind: 'trained' },
          weightDtype: 'float32',
        },
        async (out) => {
          await model.save(modelSaveHandler(out));
        },
      );
      await attachOnnx(registry, meta, model);
      model.dispose();
    }
    const rand = mulberry32(7);
    const row = Array.from({ length: F }, () => rand());
    const body = JSON.stringify({ instances: [row] });
    const binary = tensorBytesOf(Float32Array.from(row));

    // Replicas are reached directly (the serve key from the shared store).
    const serveKey = (await createOnceSecret(store, 'serve-key')).toString('base64');
    const replicaHeaders = { 'x-tq-serve-key': serveKey, 'x-tq-tenant': 'default' };
    const batchingReplica = await system.addServeReplica({
      SERVE_MAX_BATCH_SIZE: String(MAX_BATCH),
      SERVE_MAX_DELAY_MS: String(MAX_DELAY_MS),
      ...spinning,
    });
    const singleReplica = await system.addServeReplica({
      SERVE_MAX_BATCH_SIZE: '1',
      SERVE_MAX_DELAY_MS: '0',
      ...spinning,
    });
    if (PIN) pin(system, [batchingReplica.process.pid, singleReplica.process.pid]);
    const replicas = {
      batching: poster(batchingReplica.url, replicaHeaders),
      single: poster(singleReplica.url, replicaHeaders),
    };
    const perModel: (Awaited<ReturnType<typeof replicaFigures>> & { name: string })[] = [];
    for (const name of Object.keys(MODELS)) {
      const figures = await replicaFigures(name, registry, replicas, { json: body, binary }, row);
      figures.comparisons.push(await batcherAlone(store, name, binary));
      perModel.push({ name, ...figures });
    }

    // The client door (the admin's API key) of the batching replica, and the API's forward to it.
    const door = poster(batchingReplica.url, system.clientHeaders());
    const api = poster(system.url, system.clientHeaders());
    const predictMlp = pathOf('mlp');
    // The two doors one after the other (the per-model figures ran a while ago).
    const viaKey = await load(replicas.batching.call('POST', predictMlp, body), CONCURRENCY, SECONDS);
    const viaDoor = await load(door.call('POST', predictMlp, body), CONCURRENCY, SECONDS);
    // And with binary rows sent by wrk, where the client's own cost does not blur the doors' difference.
    const doorsByWrk: Load[] = [];
    if (WRK)
      for (const p of [replicas.batching, door])
        doorsByWrk.push(await wrkLoad(p, predictMlp, binary, TENSOR_CONTENT_TYPE));
    await load(api.call('POST', predictMlp, body), 4, 1); // the API lists the replicas
    // Job-status reads of an id this system never issued: a 404 after the same auth and route work as a real read.
    const jobRead = api.call('GET', '/v1/jobs/train-00000000000000000000000000000000');
    const answered = (status: number) => status < 500;
    const idle = await load(jobRead, 1, SECONDS, answered);
    const [duringDirect] = await Promise.all([
      load(jobRead, 1, SECONDS, answered),
      load(door.call('POST', predictMlp, body), CONCURRENCY, SECONDS),
    ]);
    const [duringForwarded, viaApi] = await Promise.all([
      load(jobRead, 1, SECONDS, answered),
      load(api.call('POST', predictMlp, body), CONCURRENCY, SECONDS),
    ]);
    const [duringForwardedBinary, viaApiBinary] = await Promise.all([
      load(jobRead, 1, SECONDS, answered),
      load(api.call('POST', predictMlp, binary), CONCURRENCY, SECONDS),
    ]);
    // The API's CPU per predict through it: a burst with nothing else sent to the API.
    const apiCpuMs = async (bytes: string | Buffer) => {
      const before = await cpuSeconds(system.apiPid!);
      const burst = await load(api.call('POST', predictMlp, bytes), CONCURRENCY, SECONDS);
      const ms = (((await cpuSeconds(system.apiPid!)) - before) * 1000) / (burst.perSecond * SECONDS);
      return ms.toFixed(2);
    };
    const apiCpuPerPredict = `${await apiCpuMs(body)}, ${await apiCpuMs(binary)}`;
    for (const p of [replicas.batching, replicas.single, door, api]) p.close();

    printContext({
      cpus: cpus().length,
      loadavg: loadavg()[0]!.toFixed(2),
      concurrency: CONCURRENCY,
      'seconds per phase': SECONDS,
      'wrk (C load generator)': WRK ? 'installed: figures marked wrk' : 'not installed (apt-get install wrk)',
      'processes pinned (BENCH_PIN)':
        PIN === 'replicas'
          ? 'the replicas on core 0, the rest (the load generators) on the others'
          : PIN
            ? 'API on core 0, the rest on the others'
            : 'no',
      "replicas' ORT_ALLOW_SPINNING (BENCH_ORT_SPINNING)": ORT_SPINNING ?? 'unset (a replica: off)',
      'errors (batching/single per model)': perModel.map((m) => m.errors).join(', '),
      ...Object.fromEntries(perModel.map((m) => [`${m.name}: the batching replica's batches`, m.batches])),
      'API CPU per predict through it, ms (JSON, binary rows)': apiCpuPerPredict,
      'errors (serve-key door, client door, through the API)': `${viaKey.errors}, ${viaDoor.errors}, ${viaApi.errors} (binary ${viaApiBinary.errors})`,
      'errors (job reads: idle, bursts to the replica, through the API, binary)': [
        idle,
        duringDirect,
        duringForwarded,
        duringForwardedBinary,
      ]
        .map((l) => l.errors)
        .join(', '),
    });
    const comparisons: Comparison[] = [
      ...perModel.flatMap((m) => m.comparisons),
      {
        figure: `mlp: predicts/s at concurrency ${CONCURRENCY}, client door (goal ≥ 0.7x)`,
        unit: '/s',
        value: viaDoor.perSecond,
        baseline: viaKey.perSecond,
        baselineName: 'same replica, serve-key door',
        higherIsBetter: true,
      },
      ...(WRK
        ? [
            {
              figure: `mlp: predicts/s at concurrency ${CONCURRENCY}, client door, binary rows, wrk (goal ≥ 0.7x)`,
              unit: '/s',
              value: doorsByWrk[1]!.perSecond,
              baseline: doorsByWrk[0]!.perSecond,
              baselineName: 'same replica, serve-key door',
              higherIsBetter: true,
            },
          ]
        : []),
      {
        figure: `mlp: predicts/s at concurrency ${CONCURRENCY} through the API`,
        unit: '/s',
        value: viaApi.perSecond,
        baseline: viaKey.perSecond,
        baselineName: 'same replica, serve-key door',
        higherIsBetter: true,
      },
      {
        figure: `mlp: predicts/s at concurrency ${CONCURRENCY} through the API, binary rows`,
        unit: '/s',
        value: viaApiBinary.perSecond,
        baseline: viaKey.perSecond,
        baselineName: 'same replica, serve-key door (JSON)',
        higherIsBetter: true,
      },
      {
        figure: 'p99 GET /v1/jobs/:id, predicts sent to the replica (goal ≤ 2x)',
        unit: 'ms',
        value: duringDirect.p99,
        baseline: idle.p99,
        baselineName: 'idle',
        higherIsBetter: false,
      },
      {
        figure: 'p99 GET /v1/jobs/:id, predicts sent through the API',
        unit: 'ms',
        value: duringForwarded.p99,
        baseline: idle.p99,
        baselineName: 'idle',
        higherIsBetter: false,
      },
      {
        figure: 'p99 GET /v1/jobs/:id, binary predicts sent through the API',
        unit: 'ms',
        value: duringForwardedBinary.p99,
        baseline: idle.p99,
        baselineName: 'idle',
        higherIsBetter: false,
      },
    ];
    printComparisons('online serving (issue 10)', comparisons);
  } finally {
    await system.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
