import { cpus, loadavg } from 'node:os';
import { TestSystem } from '../test/support/system';
import { tenantClient, type TenantClient } from '../test/support/tenant-keys';
import { ensureRedis } from '../tools/ensure-redis';
import { stopProcess } from '../tools/processes';
import { envInt } from './lib/env';
import { fmt, printComparisons, printContext } from './lib/report';

/**
 * Fair share (issue 11, "Quotas and fair share"): tenant "big" has BENCH_FAIR_BIG_JOBS cheap
 * infer jobs queued (one row each, on a tiny model), then tenant "small" submits one; a single
 * worker with concurrency 1 starts. Small's start latency (its job's startedAt minus the first
 * job's startedAt: the time it waited once the worker served) with FAIR_SHARE=on, against the
 * same run with FAIR_SHARE=off (first in, first out), in one run on real Redis.
 */
const BIG_JOBS = envInt(process.env.BENCH_FAIR_BIG_JOBS, 500);
const SUBMITTERS = 8;
const TINY = {
  layers: [
    { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
};
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

interface Run {
  /** ms from the first job's start to small's. */
  latencyMs: number;
  /** How many jobs started before small's. */
  startedBefore: number;
}

async function submitted(client: TenantClient, path: string, body: unknown): Promise<string> {
  const res = await client.request('POST', path, body);
  if (res.status !== 202) throw new Error(`${client.tenant} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

async function run(fairShare: 'on' | 'off'): Promise<Run> {
  const system = await TestSystem.start({ workers: 0, env: { FAIR_SHARE: fairShare, LOG_LEVEL: 'error' } });
  try {
    const big = await tenantClient(system, 'big');
    const small = await tenantClient(system, 'small');
    // Each tenant's own model (tenancy keeps models apart), trained by a worker stopped afterwards.
    const trainer = system.addWorker();
    const models: Array<{ name: string; version: number }> = [];
    for (const client of [big, small]) {
      const id = await submitted(client, '/v1/jobs/train', {
        model: { name: `tiny-${client.tenant}`, ...TINY },
        dataset: { builtin: 'iris' },
        fit: { epochs: 1 },
      });
      const view = await system.waitForJob(id);
      if (view.state !== 'completed') throw new Error(`training ${client.tenant}: ${JSON.stringify(view)}`);
      models.push(view.result.model as { name: string; version: number });
    }
    await stopProcess(trainer);
    const inferOf = (i: number) => ({ model: models[i]!, input: { instances: [IRIS_ROW] } });

    const bigIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: SUBMITTERS }, async () => {
        while (next < BIG_JOBS) {
          next++;
          bigIds.push(await submitted(big, '/v1/jobs/infer', inferOf(0)));
        }
      }),
    );
    const smallId = await submitted(small, '/v1/jobs/infer', inferOf(1));
    system.addWorker({ WORKER_CONCURRENCY: '1' });
    const smallView = await system.waitForJob(smallId, ['completed', 'failed'], 900_000);
    if (smallView.state !== 'completed') throw new Error(`small's job: ${JSON.stringify(smallView)}`);
    const smallStart = Date.parse(smallView.startedAt);
    // Every big job's start so far (the rest have not started: they count as after small's).
    const starts: number[] = [];
    for (const id of bigIds) {
      const v = (await system.request('GET', `/v1/jobs/${id}`)).body;
      if (v.startedAt) starts.push(Date.parse(v.startedAt));
    }
    const first = Math.min(smallStart, ...starts);
    return { latencyMs: smallStart - first, startedBefore: starts.filter((s) => s < smallStart).length };
  } finally {
    await system.stop();
  }
}

async function main(): Promise<void> {
  const redis = await ensureRedis();
  process.env.REDIS_URL = redis.url;
  printContext({
    redis: `${redis.url} (${redis.source})`,
    cores: cpus().length,
    'load (1 min) at start': loadavg()[0]!.toFixed(2),
    'big tenant queued jobs': BIG_JOBS,
    worker: '1, concurrency 1',
  });
  try {
    console.log('FAIR_SHARE=on...');
    const fair = await run('on');
    console.log('FAIR_SHARE=off (FIFO)...');
    const fifo = await run('off');
    printComparisons("small tenant's job start latency while big has queued jobs", [
      {
        figure: 'start latency',
        unit: 'ms',
        value: fair.latencyMs,
        baseline: fifo.latencyMs,
        baselineName: 'FIFO (FAIR_SHARE=off)',
        higherIsBetter: false,
      },
      {
        figure: 'jobs started before it',
        unit: 'jobs',
        value: fair.startedBefore,
        baseline: fifo.startedBefore,
        baselineName: 'FIFO (FAIR_SHARE=off)',
        higherIsBetter: false,
      },
    ]);
    console.log(
      `fair share: ${fmt(fair.latencyMs)} ms after ${fair.startedBefore} job(s); FIFO: ${fmt(fifo.latencyMs)} ms after ` +
        `${fifo.startedBefore}; FIFO / fair = ${fmt(fifo.latencyMs / Math.max(1, fair.latencyMs))}x`,
    );
  } finally {
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
