import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { TestSystem } from '../test/support/system';
import { loadConfig } from '@tq/config';
import { freePort } from '../tools/free-port';
import { startRedisServer, type RedisServer } from '../tools/ensure-redis';
import { envInt } from './lib/env';
import { fmt, formatTable, percentile } from './lib/report';

/**
 * Chaos, bounded in time (issue 14's figures): each scenario gets a private redis-server (which it may
 * kill) and a fresh system of 3 workers with the default lock settings, submits a mix of training jobs
 * (one model name each, so a second version is a duplicate) and inline infer jobs (rows checked in the
 * output), injects one fault, and counts jobs submitted / completed / failed / lost / duplicated and rows
 * expected / found. Also: time to takeover of a killed worker's job, and the slowest answer of the API
 * while Redis is down with clients submitting. Goal: 0 lost, 0 duplicated, answers within 2 s,
 * takeover <= 15 s. Sizes: BENCH_CHAOS_TRAINS, BENCH_CHAOS_INFERS, BENCH_CHAOS_ROWS, BENCH_OUTAGE_S.
 */
const TRAINS = envInt(process.env.BENCH_CHAOS_TRAINS, 6);
const INFERS = envInt(process.env.BENCH_CHAOS_INFERS, 6);
const ROWS = envInt(process.env.BENCH_CHAOS_ROWS, 20_000);
const OUTAGE_S = envInt(process.env.BENCH_OUTAGE_S, 30);
const FINISH_MS = 300_000;

const IRIS_LAYERS = [
  { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
  { type: 'dense', units: 3, activation: 'softmax' },
];
const trainRequest = (name: string, epochs: number, batchSize = 8) => ({
  model: { name, layers: IRIS_LAYERS },
  dataset: { builtin: 'iris' },
  fit: { epochs, batchSize, seed: 1 },
});
const inferRequest = (rows: number) => ({
  model: { name: 'base', version: 1 },
  input: { instances: Array.from({ length: rows }, (_, i) => [5 + (i % 3), 3, 1.5 + (i % 5) / 2, 0.2]) },
});

interface Submitted {
  id: string;
  kind: 'train' | 'infer';
  model?: string;
  rows?: number;
}

interface Tally {
  scenario: string;
  submitted: number;
  completed: number;
  failed: number;
  lost: number;
  duplicated: number;
  rowsExpected: number;
  rowsFound: number;
  note: string;
}

/** A redis-server of the scenario's own (never the shared one): killed with -9, restarted on its port and folder. */
class ChaosRedis {
  constructor(
    private server: RedisServer,
    readonly persist: boolean,
  ) {}
  get url(): string {
    return this.server.url;
  }
  kill9(): Promise<void> {
    return this.server.kill();
  }
  /** SIGSTOP: connections stay open, commands get no answer (a hung or swapped-out Redis). */
  pause(): void {
    this.server.child.kill('SIGSTOP');
  }
  resume(): void {
    this.server.child.kill('SIGCONT');
  }
  async restart(): Promise<void> {
    const { dir, port } = this.server;
    this.server = await startRedisServer({ dir, port, persist: this.persist });
  }
}

class Scenario {
  readonly jobs: Submitted[] = [];
  private constructor(
    readonly name: string,
    readonly redis: ChaosRedis,
    readonly system: TestSystem,
    private readonly dir: string,
  ) {}

  static async start(name: string, persist: boolean): Promise<Scenario> {
    const dir = await mkdtemp(join(tmpdir(), 'tq-chaos-'));
    const server = await startRedisServer({ dir: join(dir, 'redis'), port: await freePort(), persist });
    const redis = new ChaosRedis(server, persist);
    const system = await TestSystem.start({ workers: 3, env: { REDIS_URL: redis.url } });
    const scenario = new Scenario(name, redis, system, dir);
    const base = await system.request('POST', '/v1/jobs/train', trainRequest('base', 5));
    await system.waitForJob(base.body.id, ['completed'], FINISH_MS);
    return scenario;
  }

  async submitMix(epochs = 150): Promise<void> {
    for (let i = 0; i < Math.max(TRAINS, INFERS); i++) {
      if (i < TRAINS)
        await this.submit(
          { kind: 'train', model: `m${this.jobs.length}` },
          trainRequest(`m${this.jobs.length}`, epochs),
        );
      if (i < INFERS) await this.submit({ kind: 'infer', rows: ROWS }, inferRequest(ROWS));
    }
  }

  async submit(job: Omit<Submitted, 'id'>, body: unknown): Promise<boolean> {
    const res = await this.system.request('POST', `/v1/jobs/${job.kind}`, body).catch(() => undefined);
    if (res?.status !== 202) return false;
    this.jobs.push({ ...job, id: res.body.id as string });
    return true;
  }

  /** A worker that runs a job now, with the job: the fault's target. */
  async activeWorker(kind: Submitted['kind'], only?: string): Promise<{ child: ChildProcess; jobId: string }> {
    const ids = only ? [only] : this.jobs.filter((j) => j.kind === kind).map((j) => j.id);
    for (let i = 0; i < 600; i++) {
      for (const id of ids) {
        const view = (await this.system.request('GET', `/v1/jobs/${id}`)).body;
        const pid = view.state === 'active' ? Number(String(view.worker).split(':').pop()) : NaN;
        const child = this.system.workers.find((w) => w.pid === pid && w.exitCode === null);
        if (child && (view.progress?.percent ?? 0) > 5) return { child, jobId: id };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name}: no ${kind} job became active`);
  }

  /** Waits for every acknowledged job to end (or the bound), then counts. */
  async tally(note: string): Promise<Tally> {
    const deadline = Date.now() + FINISH_MS;
    const states = new Map<string, string>();
    for (const job of this.jobs) {
      let state = 'lost';
      while (Date.now() < deadline) {
        const res = await this.system.request('GET', `/v1/jobs/${job.id}`).catch(() => undefined);
        if (res?.status === 404 || res?.status === 410) break;
        if (res && ['completed', 'failed', 'cancelled'].includes(res.body.state)) {
          state = res.body.state as string;
          break;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      states.set(job.id, state);
    }
    let duplicated = 0,
      rowsExpected = 0,
      rowsFound = 0;
    for (const job of this.jobs) {
      if (job.kind === 'train' && states.get(job.id) === 'completed') {
        const model = (await this.system.request('GET', `/v1/models/${job.model}`)).body;
        duplicated += Math.max(0, (model.versions?.length ?? 1) - 1);
      }
      if (job.kind === 'infer') {
        rowsExpected += job.rows ?? 0;
        if (states.get(job.id) === 'completed') {
          const out = await this.system.fetch(`/v1/jobs/${job.id}/output`).then((r) => r.text());
          rowsFound += out.split('\n').filter(Boolean).length;
        }
      }
    }
    const count = (s: string) => [...states.values()].filter((v) => v === s).length;
    return {
      scenario: this.name,
      submitted: this.jobs.length,
      completed: count('completed'),
      failed: count('failed') + count('cancelled'),
      lost: count('lost'),
      duplicated,
      rowsExpected,
      rowsFound,
      note,
    };
  }

  async stop(): Promise<void> {
    await this.system.stop();
    await this.redis.kill9();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Time from the fault until the job is back in the queue, and until it runs on another worker. */
async function takeover(
  s: Scenario,
  jobId: string,
  deadPid: number,
  t0: number,
): Promise<{ queued: number; running: number }> {
  let queued = Number.NaN;
  for (;;) {
    const view = (await s.system.request('GET', `/v1/jobs/${jobId}`)).body;
    const onDead = Number(String(view.worker).split(':').pop()) === deadPid;
    if (Number.isNaN(queued) && !(view.state === 'active' && onDead)) queued = Date.now() - t0;
    if ((view.state === 'active' && !onDead) || view.state === 'completed' || view.state === 'failed')
      return { queued, running: Date.now() - t0 };
    if (Date.now() - t0 > 120_000) return { queued, running: Number.NaN };
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A worker killed mid-mix (counts), then the takeover alone: one long job on an idle system, its
 * worker killed, timed until it runs on one of the idle others (the mix's figure waits for a free one).
 */
async function sigkill(): Promise<Tally> {
  const s = await Scenario.start('SIGKILL worker', true);
  try {
    await s.submitMix();
    const busy = await s.activeWorker('train');
    busy.child.kill('SIGKILL');
    s.system.addWorker();
    const tally = await s.tally('');
    // 1,000 epochs of batch 1 (150,000 steps): far longer than the takeover.
    const long = await s.system.request('POST', '/v1/jobs/train', trainRequest('takeover', 1000, 1));
    if (long.status !== 202) throw new Error(`the long job was refused: ${JSON.stringify(long.body)}`);
    const { child, jobId } = await s.activeWorker('train', long.body.id as string);
    const t0 = Date.now();
    child.kill('SIGKILL');
    const t = await takeover(s, jobId, child.pid ?? 0, t0);
    await s.system.request('DELETE', `/v1/jobs/${jobId}`);
    tally.note = `takeover on an idle worker: queued again ${fmt(t.queued / 1000)} s, running ${fmt(t.running / 1000)} s`;
    return tally;
  } finally {
    await s.stop();
  }
}

async function sigstop(): Promise<Tally> {
  const s = await Scenario.start('SIGSTOP past lock', true);
  const config = loadConfig();
  const pauseMs = config.LOCK_DURATION_MS + config.STALLED_INTERVAL_MS + 5_000;
  try {
    await s.submitMix();
    const { child, jobId } = await s.activeWorker('train');
    const t0 = Date.now();
    child.kill('SIGSTOP');
    const t = await takeover(s, jobId, child.pid ?? 0, t0);
    await new Promise((r) => setTimeout(r, Math.max(0, pauseMs - (Date.now() - t0))));
    child.kill('SIGCONT');
    return await s.tally(`paused ${fmt(pauseMs / 1000)} s; taken over after ${fmt(t.running / 1000)} s`);
  } finally {
    await s.stop();
  }
}

async function redisKill(persist: boolean): Promise<Tally> {
  const s = await Scenario.start(`Redis kill -9, ${persist ? 'AOF' : 'no persistence'}`, persist);
  try {
    await s.submitMix();
    await s.activeWorker('train');
    await s.redis.kill9();
    await new Promise((r) => setTimeout(r, 3_000));
    await s.redis.restart();
    const health = await settledHealth(s);
    const tally = await s.tally(
      `/health after: ${health.status}${health.warnings ? ` (${health.warnings.join('; ')})` : ''}`,
    );
    if (!persist) {
      const gone = await Promise.all(
        s.jobs.map(async (j) => (await s.system.request('GET', `/v1/jobs/${j.id}`)).status),
      );
      tally.note += `; lost jobs answer ${[...new Set(gone.filter((g) => g !== 200))].join('/') || '-'}`;
    }
    return tally;
  } finally {
    await s.stop();
  }
}

/** /health once the API has its connection back (or after 20 s): what it says about the restart. */
async function settledHealth(s: Scenario): Promise<{ status: string; warnings?: string[] }> {
  for (let i = 0; ; i++) {
    const health = (await s.system.request('GET', '/health')).body;
    if (health.redis?.ok || i >= 200) return health;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Redis away OUTAGE_S (killed, or hung by SIGSTOP) with 4 clients: /health, a job read and two
 * submitters. Every answer's time and status; afterwards, jobs no client got an id for (ghosts).
 */
async function redisAway(how: 'down' | 'hung'): Promise<Tally> {
  const s = await Scenario.start(`Redis ${how} ${OUTAGE_S} s, clients on`, true);
  const times: number[] = [];
  const healthTimes: number[] = [];
  const statuses = new Map<number, number>();
  try {
    await s.submitMix(40);
    const known = s.jobs[0]!.id;
    if (how === 'down') await s.redis.kill9();
    else s.redis.pause();
    const until = Date.now() + OUTAGE_S * 1000;
    const client = async (i: number) => {
      while (Date.now() < until) {
        const started = Date.now();
        const status =
          i === 0
            ? (await s.system.request('GET', '/health')).status
            : i === 1
              ? (await s.system.request('GET', `/v1/jobs/${known}`)).status
              : (await s.submit({ kind: 'infer', rows: 10 }, inferRequest(10)))
                ? 202
                : 503;
        (i === 0 ? healthTimes : times).push(Date.now() - started);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await Promise.all([0, 1, 2, 3].map(client));
    if (how === 'down') await s.redis.restart();
    else s.redis.resume();
    const tally = await s.tally('');
    // Ghosts: jobs in the system that no client got an id for (a late-executed submission).
    const acknowledged = new Set(s.jobs.map((j) => j.id));
    const listed = (await s.system.request('GET', '/v1/jobs?type=infer&pageSize=200')).body.items as { id: string }[];
    const ghosts = listed.filter((j) => !acknowledged.has(j.id)).length;
    tally.note =
      `answers during outage: max ${fmt(Math.max(...times) / 1000)} s, p99 ${fmt(percentile(times, 99) / 1000)} s; ` +
      `/health max ${fmt(Math.max(...healthTimes) / 1000)} s; statuses ${[...statuses].map(([k, v]) => `${k}×${v}`).join(' ')}; ` +
      `ghost jobs ${ghosts}`;
    return tally;
  } finally {
    await s.stop();
  }
}

async function main(): Promise<void> {
  console.log(`chaos bench: ${TRAINS} train + ${INFERS} infer jobs (${ROWS} rows each) per scenario, 3 workers`);
  const rows: Tally[] = [];
  const scenarios = [
    sigkill,
    sigstop,
    () => redisKill(true),
    () => redisKill(false),
    () => redisAway('down'),
    () => redisAway('hung'),
  ];
  for (const run of scenarios) {
    const tally = await run();
    console.log(`${tally.scenario}: ${JSON.stringify(tally)}`);
    rows.push(tally);
  }
  console.log(
    `\n${formatTable(
      ['scenario', 'submitted', 'completed', 'failed', 'lost', 'duplicated', 'rows expected', 'rows found', 'notes'],
      rows.map((r) => [
        r.scenario,
        String(r.submitted),
        String(r.completed),
        String(r.failed),
        String(r.lost),
        String(r.duplicated),
        String(r.rowsExpected),
        String(r.rowsFound),
        r.note,
      ]),
    )}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
