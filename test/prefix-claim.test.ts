import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXIT_FOREIGN_PREFIX } from '@tq/queue';
import { freePort } from '../tools/free-port';
import { API_MAIN, SERVE_MAIN, WORKER_MAIN } from '../tools/processes';
import { irisTrain } from './support/iris-train';
import { TestSystem } from './support/system';

const TAKE_PREFIX = join(__dirname, '..', 'tools', 'take-prefix.js');

/** A process that should stop and does not is killed after this long (the test then fails, not hangs). */
const GIVE_UP_MS = 60_000;

/** The exit code of `child`; null when it had to be killed after GIVE_UP_MS. */
async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const kill = setTimeout(() => child.kill('SIGKILL'), GIVE_UP_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(kill);
  return code;
}

/** Runs a compiled entry point to its end: its exit code and everything it wrote. */
async function runToExit(main: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [main], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return { code: await exitOf(child), out };
}

/**
 * Two systems on one Redis with one QUEUE_PREFIX (two clones, each with its own ./.data), or a
 * process left on a store of its own, share queues and numbering while their files land apart:
 * the prefix belongs to the store that claimed it first, and others are refused.
 */
describe('QUEUE_PREFIX, claimed by its artifact store', () => {
  let system: TestSystem;
  let otherDir: string;
  let otherEnv: Record<string, string>;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    otherDir = await mkdtemp(join(tmpdir(), 'tq-other-store-'));
    otherEnv = {
      REDIS_URL: system.redisUrl,
      QUEUE_PREFIX: system.prefix,
      ARTIFACT_DIR: otherDir,
      LOG_LEVEL: 'warn',
      WORKER_METRICS_PORT: '0',
      API_METRICS_PORT: '0',
      TQ_ADMIN_KEY: system.adminKey ?? '',
    };
  });
  after(async () => {
    await system?.stop();
    if (otherDir) await rm(otherDir, { recursive: true, force: true });
  });

  it("refuses a worker, an API and a serve replica of another store, naming both; none takes the system's job", async () => {
    const submitted = await system.request('POST', '/v1/jobs/train', irisTrain({ epochs: 2 }));
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const id = submitted.body.id as string;
    const [worker, api, replica] = await Promise.all([
      runToExit(WORKER_MAIN, otherEnv),
      runToExit(API_MAIN, { ...otherEnv, PORT: String(await freePort()) }),
      runToExit(SERVE_MAIN, { ...otherEnv, SERVE_PORT: String(await freePort()) }),
    ]);
    for (const [name, run] of Object.entries({ worker, api, replica })) {
      assert.equal(run.code, EXIT_FOREIGN_PREFIX, `${name}: ${run.out}`);
      assert.ok(run.out.includes(`QUEUE_PREFIX "${system.prefix}"`), `${name}: ${run.out}`);
      assert.ok(run.out.includes(`belongs to another artifact store: ${hostname()}:${system.artifactDir}`), run.out);
      assert.ok(run.out.includes(`this process's store is ${hostname()}:${otherDir}`), run.out);
      assert.ok(run.out.includes('npm run take-prefix'), run.out);
    }
    const job = await system.request('GET', `/v1/jobs/${id}`);
    assert.equal(job.body.state, 'waiting', 'no process of the other store took the job');
    // A worker of the system's own store takes it.
    system.addWorker();
    const done = await system.waitForJob(id);
    assert.equal(done.state, 'completed', JSON.stringify(done));
  });

  it('take-prefix hands the prefix to another store; the running processes of the old one stop', async () => {
    const api = await system.addApi();
    const worker = system.workers[0] ?? system.addWorker();
    const taken = await runToExit(TAKE_PREFIX, otherEnv);
    assert.equal(taken.code, 0, taken.out);
    assert.ok(taken.out.includes(`now belongs to ${hostname()}:${otherDir}`), taken.out);
    assert.ok(taken.out.includes(`"location":"${hostname()}:${system.artifactDir}"`), taken.out);
    // Each re-claims within 10 s (RECLAIM_EVERY_MS), finds the other store there, and stops.
    assert.deepEqual(await Promise.all([exitOf(api.process), exitOf(worker)]), [
      EXIT_FOREIGN_PREFIX,
      EXIT_FOREIGN_PREFIX,
    ]);
  });
});
