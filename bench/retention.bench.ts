import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { QueueName } from '@tq/contracts';
import { TestSystem } from '../test/support/system';
import { ensureRedis } from '../tools/ensure-redis';
import { Completions } from './lib/completions';
import { envInt } from './lib/env';
import { jsonPoster } from './lib/json-poster';
import { fmt, printContext } from './lib/report';

/**
 * Retention keeps Redis and the artifact folder flat (issue 14): BENCH_JOBS (20,000) one-row infer
 * jobs on a tiny iris model go through the real system (API + one worker, BENCH_CLIENTS clients
 * each submitting and waiting for completion) under tight bounds; every BENCH_EVERY (2,000) jobs
 * it prints Redis used_memory (INFO memory) and the artifact folder's bytes and file count, then
 * last / first sample: flat is ~1. Each phase runs on its own private redis-server, so used_memory
 * is the system's alone (the shared Redis holds other runs' keys).
 * Then the old behaviour for comparison (BENCH_BASELINE_JOBS, 6,000): BullMQ count-only trimming
 * (count 1,000) and no sweeper, where Redis is flat but every job's output stays on disk.
 * Bounded in time: a phase stops after BENCH_SECONDS (900) and says how far it got and at what rate.
 */
const JOBS = envInt(process.env.BENCH_JOBS, 20_000);
const BASELINE_JOBS = envInt(process.env.BENCH_BASELINE_JOBS, 6_000);
const EVERY = envInt(process.env.BENCH_EVERY, 2_000);
const CLIENTS = envInt(process.env.BENCH_CLIENTS, 8);
const SECONDS = envInt(process.env.BENCH_SECONDS, 900);
const BOUNDS = { JOB_HISTORY_COUNT: '1000', JOB_HISTORY_MAX_BYTES: String(512 * 1024), RETENTION_SWEEP_MS: '1000' };
// Old behaviour: BullMQ's count as the only bound. Public jobs' count is now 10 x JOB_HISTORY_COUNT
// (a backstop), so 100 gives the old 1,000; the sweeper's first round is weeks away.
const COUNT_ONLY = { JOB_HISTORY_COUNT: '100', RETENTION_SWEEP_MS: '2000000000' };
const IRIS_ROW = [5.1, 3.5, 1.4, 0.2];

interface Sample {
  jobs: number;
  seconds: number;
  usedMemory: number;
  artifactBytes: number;
  artifactFiles: number;
}

async function main(): Promise<void> {
  console.log(
    `retention bench: ${JOBS} infer jobs under ${JSON.stringify(BOUNDS)}, then ${BASELINE_JOBS} count-only...`,
  );
  const bounded = await phase('bounded (this change)', JOBS, BOUNDS);
  const countOnly = await phase('count-only (before)', BASELINE_JOBS, COUNT_ONLY);
  console.log('\ncontext:');
  printContext({
    machine: `${cpus().length} x ${cpus()[0]?.model ?? '?'}, node ${process.version}`,
    jobs: `one-row inline infer (iris MLP 4-8-3), ${CLIENTS} clients, each POST then wait for "completed"; 1 worker`,
    bounds: `bounded: ${JSON.stringify(BOUNDS)} (age: default); count-only: BullMQ count 1,000, no sweeper`,
    'dropped connections': `${resubmitted} submissions sent again after a dropped keep-alive connection`,
  });
  for (const [name, samples] of [
    ['bounded (this change)', bounded],
    ['count-only (before)', countOnly],
  ] as const) {
    const [first, last] = [samples[0], samples[samples.length - 1]];
    if (!first || !last) continue;
    console.log(
      `\n${name}: last / first sample: used_memory ${fmt(last.usedMemory / first.usedMemory)}, artifact bytes ${fmt(
        last.artifactBytes / first.artifactBytes,
      )}, files ${fmt(last.artifactFiles / first.artifactFiles)} (jobs ${first.jobs} → ${last.jobs}; ${fmt(
        last.jobs / last.seconds,
      )} jobs/s)`,
    );
  }
}

/** One system on its own Redis: `jobs` jobs, a sample every EVERY; the samples. */
async function phase(name: string, jobs: number, env: Record<string, string>): Promise<Sample[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tq-retention-bench-'));
  delete process.env.REDIS_URL;
  // An address nothing answers: ensureRedis starts a private redis-server.
  const redis = await ensureRedis(dir, 'redis://127.0.0.1:1');
  process.env.REDIS_URL = redis.url;
  const system = await TestSystem.start({ workers: 1, env: { ...env, LOG_LEVEL: 'error' } });
  const client = new Redis(redis.url);
  const http = jsonPoster(system.url, CLIENTS, system.clientHeaders());
  const done = await Completions.open(QueueName.Infer, system.prefix, redis.url);
  const samples: Sample[] = [];
  try {
    const model = await trainIris(system, http.post);
    const infer = { model, input: { instances: [IRIS_ROW] } };
    console.log(`\n${name}: ${jobs} jobs, a sample every ${EVERY}`);
    const t0 = performance.now();
    const deadline = Date.now() + SECONDS * 1000;
    let submitted = 0;
    let completed = 0;
    let sampling = Promise.resolve();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (submitted < jobs && Date.now() < deadline) {
          submitted++;
          await done.wait(await submit(http.post, infer), 120_000);
          if (++completed % EVERY === 0) {
            const at = completed;
            sampling = sampling.then(async () => {
              samples.push(await sample(client, system.artifactDir, at, (performance.now() - t0) / 1000));
              printSample(samples[samples.length - 1]!, samples.length === 1);
            });
          }
        }
      }),
    );
    await sampling;
    if (completed < jobs)
      console.log(
        `${name}: stopped after BENCH_SECONDS=${SECONDS}: ${completed} of ${jobs} jobs, ${fmt(
          completed / ((performance.now() - t0) / 1000),
        )} jobs/s`,
      );
    return samples;
  } finally {
    http.close();
    await done.close();
    client.disconnect();
    await system.stop();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

let resubmitted = 0;

/**
 * POST, once more if the connection dropped under it: a keep-alive socket the server closed as the
 * request went out ("socket hang up", ECONNRESET). Counted and printed; any other failure stops the run.
 */
async function submit(post: (path: string, body: unknown) => Promise<string>, body: unknown): Promise<string> {
  try {
    return await post('/v1/jobs/infer', body);
  } catch (err) {
    const message = (err as Error).message;
    if (!/socket hang up|ECONNRESET/.test(message)) throw err;
    resubmitted++;
    return post('/v1/jobs/infer', body);
  }
}

async function trainIris(
  system: TestSystem,
  post: (path: string, body: unknown) => Promise<string>,
): Promise<{ name: string; version: number }> {
  const id = await post('/v1/jobs/train', {
    model: {
      name: 'bench-retention',
      layers: [
        { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
    },
    dataset: { builtin: 'iris' },
    fit: { epochs: 1 },
  });
  const job = await system.waitForJob(id);
  if (job.state !== 'completed') throw new Error(`training failed: ${JSON.stringify(job)}`);
  return job.result.model;
}

async function sample(redis: Redis, artifactDir: string, jobs: number, seconds: number): Promise<Sample> {
  const info = await redis.info('memory');
  const usedMemory = Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
  const { bytes, files } = await folder(artifactDir);
  return { jobs, seconds, usedMemory, artifactBytes: bytes, artifactFiles: files };
}

/** Bytes and files under a folder (the bench measures the artifact folder from outside). */
async function folder(path: string): Promise<{ bytes: number; files: number }> {
  const out = { bytes: 0, files: 0 };
  for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) {
      const inner = await folder(child);
      out.bytes += inner.bytes;
      out.files += inner.files;
    } else {
      const size = await stat(child).then(
        (s) => s.size,
        () => 0,
      );
      out.bytes += size;
      out.files++;
    }
  }
  return out;
}

/** One line per sample, fixed widths (samples print as they come, not as one table at the end). */
function printSample(s: Sample, header: boolean): void {
  const cells = (xs: string[]) => xs.map((x, i) => x.padStart([8, 8, 20, 16, 16][i]!)).join(' |');
  if (header) console.log(cells(['jobs', 's', 'redis used_memory', 'artifact bytes', 'artifact files']));
  console.log(cells([String(s.jobs), fmt(s.seconds), fmt(s.usedMemory), fmt(s.artifactBytes), fmt(s.artifactFiles)]));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
