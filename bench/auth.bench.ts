import { cpus, loadavg } from 'node:os';
import { ApiKeyStore, Authenticator } from '@tq/auth';
import { loadConfig } from '@tq/config';
import { createRedisClient } from '@tq/queue';
import { TestSystem } from '../test/support/system';
import { ensureRedis } from '../tools/ensure-redis';
import { stopProcess } from '../tools/processes';
import { envInt } from './lib/env';
import { cpuSeconds } from './lib/proc-cpu';
import { jsonPoster, type JsonPoster } from './lib/json-poster';
import { fmt, percentile, printComparisons, printContext, type Comparison } from './lib/report';
import { WARMUP, throughput } from './lib/submit-loops';

/**
 * The cost of API keys (issue 11, "Figures": overhead ≤ 5% on submit and predict throughput vs the
 * same build with AUTH=off, in one run). One system, two API processes of the same build on the same
 * Redis, prefix and artifacts, started together: one with AUTH=on (requests carry a member key),
 * one with AUTH=off. A tiny iris model is trained once and the worker stopped, so nothing else of the
 * system runs while measuring. Then, at BENCH_CONCURRENCY (16), BENCH_WARM_ROUNDS (8, not counted)
 * and BENCH_ROUNDS (16) short rounds that alternate the sides (and which goes first): BENCH_SUBMITS POST /v1/jobs/infer with one inline row
 * (202: queued, nobody consumes) and BENCH_PREDICTS POST .../predict with one row (200).
 *
 * Three readings. Per load, throughput: the median over rounds of on/off, each ratio taken between
 * two runs a moment apart, so drift of a shared machine cancels; and the API process's own CPU time
 * per request over all rounds (utime + stime from /proc), which other processes' load moves less. And the check
 * alone: Authenticator.authenticate of a cached key in this process, µs of CPU per call.
 */
const CONCURRENCY = envInt(process.env.BENCH_CONCURRENCY, 16);
const SUBMITS = envInt(process.env.BENCH_SUBMITS, 500);
const PREDICTS = envInt(process.env.BENCH_PREDICTS, 500);
const ROUNDS = envInt(process.env.BENCH_ROUNDS, 16);
const WARM_ROUNDS = envInt(process.env.BENCH_WARM_ROUNDS, 8);
/** The goal: AUTH=on at most this much slower than AUTH=off. */
const GOAL_OVERHEAD = 0.05;
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];
const median = (xs: readonly number[]) => percentile(xs, 50);
/**
 * CPU per request over all rounds (every round sends as many): one round's reading is a few clock
 * ticks of 10 ms (a predict round: about ten), too coarse for a median of rounds to tell 5% apart.
 */
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const CHECKS = 100_000;

/** µs of CPU per authenticate() of a cached key (best of 3 batches), with the API's options. */
async function checkCost(system: TestSystem, key: string): Promise<number> {
  const redis = createRedisClient({ REDIS_URL: system.redisUrl });
  try {
    const auth = new Authenticator(new ApiKeyStore(redis, system.prefix), {
      adminKey: system.adminKey,
      cacheSeconds: loadConfig().AUTH_CACHE_SECONDS,
    });
    const header = `Bearer ${key}`;
    await auth.authenticate(header);
    const batches: number[] = [];
    for (let b = 0; b < 3; b++) {
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < CHECKS; i++) await auth.authenticate(header);
      const cpu = process.cpuUsage(cpu0);
      batches.push((cpu.user + cpu.system) / CHECKS);
    }
    return Math.min(...batches);
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<void> {
  const redis = await ensureRedis();
  process.env.REDIS_URL = redis.url; // TestSystem and loadConfig read it
  const system = await TestSystem.start({ workers: 1 });
  const clients: JsonPoster[] = [];
  try {
    const trained = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'bench-auth',
        layers: [
          { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
          { type: 'dense', units: 3, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'iris' },
      fit: { epochs: 2, batchSize: 32, validationSplit: 0 },
    });
    if (trained.status !== 202) throw new Error(`train: ${trained.status} ${JSON.stringify(trained.body)}`);
    const job = await system.waitForJob(trained.body.id);
    if (job.state !== 'completed') throw new Error(`train ${job.state}: ${job.error}`);
    const model = job.result.model as { name: string; version: number };
    await Promise.all(system.workers.map((w) => stopProcess(w)));

    const member = await system.request('POST', '/v1/keys', { name: 'auth bench', tenant: 'default', role: 'member' });
    if (member.status !== 201) throw new Error(`key: ${member.status} ${JSON.stringify(member.body)}`);
    // Two fresh API processes started together, alike but for AUTH (the TestSystem's own one, which
    // trained the model, has a different history: heap, caches, connections).
    // Nothing consumes the submitted jobs: the tenant's queued-jobs quota (10,000 by default) would
    // end the bench after ten rounds, so both sides get room for every round's jobs. And the tenant's
    // request rate (1,000/s by default) is shared by the three API processes alive (each allows a
    // third): both sides get a rate no round reaches, so the quota is not what is measured.
    const room = {
      TENANT_MAX_QUEUED_JOBS: String(2 * (WARM_ROUNDS + ROUNDS) * (SUBMITS + WARMUP) + 1000),
      TENANT_MAX_REQUESTS_PER_SECOND: '1000000',
      TENANT_REQUEST_BURST: '1000000',
    };
    const [on, off] = [await system.addApi(room), await system.addApi({ ...room, AUTH: 'off' })];
    const offUrl = off.url;
    const pids = { on: on.process.pid!, off: off.process.pid! };
    // A fresh keep-alive pool per round: a socket left idle while the other side ran was closed by
    // the server (keep-alive timeout) as the next round reused it (ECONNRESET on a loaded machine).
    const clientOf = {
      on: () => jsonPoster(on.url, CONCURRENCY, { authorization: `Bearer ${member.body.key as string}` }),
      off: () => jsonPoster(offUrl, CONCURRENCY),
    };
    const submitBody = { model, input: { instances: [IRIS_ROW] } };
    const predictPath = `/v1/models/${model.name}/versions/${model.version}/predict`;
    const predictBody = { instances: [IRIS_ROW] };
    const loads = {
      submit: (c: JsonPoster) => () => c.post('/v1/jobs/infer', submitBody),
      predict: (c: JsonPoster) => () => c.call(predictPath, predictBody, 200),
    };
    // The on side really checks keys (and the off side does not): a request without one tells them apart.
    const anonymous = { on: jsonPoster(on.url, 1), off: jsonPoster(offUrl, 1) };
    clients.push(anonymous.on, anonymous.off);
    const status = (c: JsonPoster) =>
      c.call(predictPath, predictBody, 200).then(
        () => 200,
        (err: Error) => Number(/→ (\d+)/.exec(err.message)?.[1]),
      );
    const [onStatus, offStatus] = [await status(anonymous.on), await status(anonymous.off)];
    if (onStatus !== 401 || offStatus !== 200)
      throw new Error(`without a key: AUTH=on answered ${onStatus} (401 expected), AUTH=off ${offStatus} (200)`);
    const counts = { submit: SUBMITS, predict: PREDICTS };
    type Side = 'on' | 'off';
    type Load = 'submit' | 'predict';
    const runs: Record<Load, Record<Side, Array<{ rate: number; cpuMs: number }>>> = {
      submit: { on: [], off: [] },
      predict: { on: [], off: [] },
    };
    console.log(
      `auth bench: ${WARM_ROUNDS} warm-up and ${ROUNDS} measured rounds of ${SUBMITS} submits and ${PREDICTS} predicts per side at concurrency ${CONCURRENCY}...`,
    );
    // Warm-up rounds first, not counted: both processes' predict throughput climbed threefold over
    // the first five rounds of a run (1,900 to 5,600/s: JIT, inline caches), and the pairs taken on
    // that slope were 0.79..0.93 on/off there, where the 5% looked for is lost.
    for (let round = -WARM_ROUNDS; round < ROUNDS; round++)
      for (const load of ['submit', 'predict'] as const)
        for (const side of round % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          const cpu0 = await cpuSeconds(pids[side]);
          const client = clientOf[side]();
          const { rate } = await throughput(counts[load], CONCURRENCY, loads[load](client)).finally(() =>
            client.close(),
          );
          // The warm-up requests of throughput() are counted in the CPU too (a few of hundreds).
          const cpuMs = (((await cpuSeconds(pids[side])) - cpu0) * 1000) / (counts[load] + WARMUP);
          if (round >= 0) runs[load][side].push({ rate, cpuMs });
          const label = round < 0 ? `warm-up ${round + WARM_ROUNDS + 1}` : `round ${round + 1}`;
          console.log(`  ${label} ${load} AUTH=${side}: ${fmt(rate)}/s, API CPU ${fmt(cpuMs)} ms/request`);
        }

    // The check alone, in this process: what AUTH=on adds to a request once its key is cached.
    const checks = await checkCost(system, member.body.key as string);

    printContext({
      machine: `${cpus().length} cores, load ${fmt(loadavg()[0]!)} (shared: other processes run too)`,
      redis: `${redis.url} (${redis.source})`,
      model: `${model.name} v${model.version} (4-16-3), one row per request`,
      'AUTH=on': 'member key; after its first request every check is a cache hit and a sha256',
      'the check alone': `${fmt(checks)} µs CPU per Authenticator.authenticate (cached key, in-process, ${CHECKS.toLocaleString('en-US')} calls)`,
    });
    const loadsMeasured = ['submit', 'predict'] as const;
    const name = { submit: 'POST /v1/jobs/infer (202)', predict: 'POST .../predict (200)' };
    const comparisons: Comparison[] = loadsMeasured.flatMap((load) => {
      const r = runs[load];
      return [
        {
          figure: `${name[load]}, median of rounds`,
          unit: 'requests/s',
          value: median(r.on.map((x) => x.rate)),
          baseline: median(r.off.map((x) => x.rate)),
          baselineName: 'the same build, AUTH=off',
          higherIsBetter: true,
        },
        {
          figure: `${name[load]}, API process CPU, all rounds`,
          unit: 'ms/request',
          value: mean(r.on.map((x) => x.cpuMs)),
          baseline: mean(r.off.map((x) => x.cpuMs)),
          baselineName: 'the same build, AUTH=off',
          higherIsBetter: false,
        },
      ];
    });
    printComparisons(`API keys: AUTH=on (member key) vs AUTH=off, ${ROUNDS} alternating rounds`, comparisons);
    for (const load of loadsMeasured) {
      const r = runs[load];
      // Paired: each round's on against the off run next to it.
      const paired = median(r.on.map((x, i) => x.rate / r.off[i]!.rate));
      const cpu = mean(r.on.map((x) => x.cpuMs)) / mean(r.off.map((x) => x.cpuMs)) - 1;
      console.log(
        `${load}: throughput overhead ${((1 - paired) * 100).toFixed(1)}% (median of paired on/off ratios; goal ≤ ${GOAL_OVERHEAD * 100}%: ${1 - paired <= GOAL_OVERHEAD ? 'met' : 'MISSED'}),` +
          ` API CPU per request ${cpu >= 0 ? '+' : ''}${(cpu * 100).toFixed(1)}%;` +
          ` rounds on ${r.on.map((x) => fmt(x.rate)).join(' / ')}, off ${r.off.map((x) => fmt(x.rate)).join(' / ')} requests/s`,
      );
    }
  } finally {
    for (const c of clients) c.close();
    await system.stop();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
