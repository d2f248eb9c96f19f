import { Agent, request } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { loadConfig } from '@tq/config';
import { TestSystem } from '../test/support/system';
import { envInt } from './lib/env';
import { percentile, printComparisons, printContext, type Comparison } from './lib/report';

/**
 * WORKER_NICE: does a training job leave the API its CPU? One system per nice value (0, then the
 * default), each with as many workers as this machine has cores, so training can take all of them
 * (`npm start` on a laptop: the API and the workers in one cgroup). Measured: the p99 of
 * GET /v1/jobs/:id (a read every 5 ms) idle, then while every worker trains an MNIST MLP; and the
 * trainers' samples/s (their last progress report), the cost to training.
 * Env: BENCH_NICE_SECONDS (default 6) per phase.
 */
const SECONDS = envInt(process.env.BENCH_NICE_SECONDS, 6);
const WORKERS = cpus().length;
const DEFAULT_NICE = loadConfig({}).WORKER_NICE;
/** A read every 5 ms at most (a polling client, 200/s): as fast as it can go, the reader itself takes a core. */
const READ_EVERY_MS = 5;
const TRAIN = {
  model: {
    name: 'nice-mnist',
    layers: [
      { type: 'dense', units: 256, activation: 'relu', inputShape: [784] },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'mnist' },
  // Longer than the phases: cancelled once measured.
  fit: { epochs: 200, batchSize: 64 },
};

interface Figures {
  idleP99: number;
  trainingP99: number;
  reads: number;
  samplesPerSec: number;
}

/** Job-status reads one after another for `seconds`, READ_EVERY_MS apart: latencies in ms (an id never issued: a 404 after the same work). */
async function jobReads(system: TestSystem, agent: Agent, seconds: number): Promise<number[]> {
  const read = () =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      const path = '/v1/jobs/train-00000000000000000000000000000000';
      request(system.url + path, { agent, headers: system.clientHeaders() }, (res) => {
        res.resume().on('end', () => resolve(performance.now() - t));
      })
        .once('error', reject)
        .end();
    });
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const latency = await read();
    latencies.push(latency);
    await new Promise((r) => setTimeout(r, Math.max(0, READ_EVERY_MS - latency)));
  }
  return latencies;
}

async function measure(nice: number): Promise<Figures> {
  const system = await TestSystem.start({ workers: WORKERS, env: { WORKER_NICE: String(nice) } });
  const agent = new Agent({ keepAlive: true });
  try {
    await jobReads(system, agent, 1);
    const idle = await jobReads(system, agent, SECONDS);
    const ids: string[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const { status, body } = await system.request('POST', '/v1/jobs/train', TRAIN);
      if (status !== 202) throw new Error(`train submission: ${status} ${JSON.stringify(body)}`);
      ids.push(body.id);
    }
    // Every worker past loading its data (progress stage "training") and a few batches in.
    const views = async () => Promise.all(ids.map(async (id) => (await system.request('GET', `/v1/jobs/${id}`)).body));
    for (;;) {
      const all = await views();
      if (all.some((v) => v.state !== 'active' && v.state !== 'waiting'))
        throw new Error(`a training job ended early: ${JSON.stringify(all.map((v) => v.state))}`);
      if (all.every((v) => v.progress?.stage === 'training' && v.progress.samplesPerSec > 0)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const training = await jobReads(system, agent, SECONDS);
    const rates = (await views()).map((v) => Number(v.progress?.samplesPerSec ?? 0));
    for (const id of ids) await system.request('DELETE', `/v1/jobs/${id}`);
    return {
      idleP99: percentile(idle, 99),
      trainingP99: percentile(training, 99),
      reads: training.length,
      samplesPerSec: rates.reduce((a, b) => a + b, 0),
    };
  } finally {
    agent.destroy();
    await system.stop();
  }
}

async function main(): Promise<void> {
  const atZero = await measure(0);
  const atDefault = await measure(DEFAULT_NICE);
  printContext({
    cpus: cpus().length,
    loadavg: loadavg()[0]!.toFixed(2),
    'workers (one training job each)': WORKERS,
    'seconds per phase': SECONDS,
    'job reads during training (nice 0, default)': `${atZero.reads}, ${atDefault.reads}`,
  });
  const underTraining = (nice: number, f: Figures): Comparison => ({
    figure: `p99 GET /v1/jobs/:id while ${WORKERS} workers train, WORKER_NICE=${nice}`,
    unit: 'ms',
    value: f.trainingP99,
    baseline: f.idleP99,
    baselineName: 'idle, same system',
    higherIsBetter: false,
  });
  const comparisons: Comparison[] = [
    underTraining(0, atZero),
    underTraining(DEFAULT_NICE, atDefault),
    {
      figure: `training samples/s, all workers, WORKER_NICE=${DEFAULT_NICE}`,
      unit: '/s',
      value: atDefault.samplesPerSec,
      baseline: atZero.samplesPerSec,
      baselineName: 'WORKER_NICE=0',
      higherIsBetter: true,
    },
  ];
  printComparisons('workers below the API (WORKER_NICE)', comparisons);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
