import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureRedis, type RedisHandle } from '../tools/ensure-redis';
import { fmt, formatTable } from './lib/report';

/**
 * `npm run bench`: every compiled bench/*.bench.js, one after another, each in its own child process
 * so no script inherits another's tfjs backend, kernels, heap or Redis clients, and the 2 cores are
 * not shared between benches. Arguments filter scripts by substring. A script that fails (non-zero
 * exit, signal, or over BENCH_TIMEOUT_S) is reported and the runner exits 1 after running the rest.
 */
const TIMEOUT_S = Number(process.env.BENCH_TIMEOUT_S ?? 1800);

interface Outcome {
  script: string;
  status: string;
  ok: boolean;
  seconds: number;
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const scripts = readdirSync(__dirname)
    .filter((f) => f.endsWith('.bench.js'))
    .sort()
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
  if (scripts.length === 0)
    throw new Error(`no bench scripts in ${__dirname}${filters.length ? ` match ${filters.join(' ')}` : ''}`);

  // One Redis for every script (a private one is started only if none answers); a script that
  // needs none still runs when none can be had.
  let redis: RedisHandle | undefined;
  try {
    redis = await ensureRedis();
    console.log(`redis: ${redis.url} (${redis.source})`);
  } catch (err) {
    console.log(`redis: none (${(err as Error).message}); scripts that need it will fail`);
  }

  const outcomes: Outcome[] = [];
  try {
    for (const [i, script] of scripts.entries()) {
      console.log(
        `\n${'='.repeat(78)}\n== [${i + 1}/${scripts.length}] bench/${script.replace(/\.js$/, '.ts')}\n${'='.repeat(78)}`,
      );
      const outcome = await runScript(script, redis?.url);
      outcomes.push(outcome);
      console.log(`== ${script}: ${outcome.status} in ${fmt(outcome.seconds)} s`);
    }
  } finally {
    await redis?.stop();
  }

  console.log(
    `\n${formatTable(
      ['script', 'result', 'seconds'],
      outcomes.map((o) => [o.script, o.status, fmt(o.seconds)]),
    )}`,
  );
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length) {
    console.error(
      `\n${failed.length} of ${outcomes.length} bench scripts failed: ${failed.map((o) => o.script).join(', ')}`,
    );
    process.exitCode = 1;
  }
}

function runScript(script: string, redisUrl: string | undefined): Promise<Outcome> {
  const started = performance.now();
  const child = spawn(process.execPath, [join(__dirname, script)], {
    stdio: 'inherit',
    env: { ...process.env, ...(redisUrl ? { REDIS_URL: redisUrl } : {}) },
  });
  let timedOut = false;
  // SIGTERM first so the script's own cleanup (its processes, its Redis keys) runs; SIGKILL after 30 s.
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  }, TIMEOUT_S * 1000);
  return new Promise((done) => {
    const finish = (status: string, ok: boolean) => {
      clearTimeout(timer);
      done({ script, status, ok, seconds: (performance.now() - started) / 1000 });
    };
    child.once('error', (err) => finish(`failed to start: ${err.message}`, false));
    child.once('exit', (code, signal) => {
      if (timedOut) finish(`FAILED: over BENCH_TIMEOUT_S=${TIMEOUT_S}`, false);
      else if (signal) finish(`FAILED: killed by ${signal}`, false);
      else finish(code === 0 ? 'ok' : `FAILED: exit ${code}`, code === 0);
    });
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
