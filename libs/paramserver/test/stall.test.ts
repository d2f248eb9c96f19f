import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueueName, trainRequestSchema } from '@tq/contracts';
import { initBackend } from '@tq/ml';
import { runIdOf, shardJobId } from '@tq/paramserver';
import { PsTestEnv, startParamServerWorkers } from './fixtures/harness';
import { startPsProcess, stopAll, type PsProcess } from './fixtures/processes';

const ROWS = 2000; // 1800 training rows: 29 steps per epoch with 2 x 32

/** Polls `probe` until it returns a value: waits on a state; the guard only ends a hang. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, guardMs = 600_000): Promise<T> {
  const guard = Date.now() + guardMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > guard) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A process starved of CPU for longer than its job lock (SIGSTOP stands in for a loaded machine):
 * BullMQ gives its job to another process while the first, once it runs again, still holds it in
 * hand. The older attempt must notice and stop rather than go on as a second copy of the shard.
 */
describe('a shard whose process stalls past its job lock', () => {
  const env = new PsTestEnv();
  const procs: PsProcess[] = [];
  before(async () => {
    await initBackend();
    await env.setup();
    const agg = startParamServerWorkers({
      prefix: env.prefix,
      root: env.root,
      queues: [QueueName.Aggregate],
      rows: ROWS,
    });
    env.onClose(() => agg.close());
    env.startCoordinator(ROWS);
    const base = {
      PS_PREFIX: env.prefix,
      PS_ROOT: env.root,
      PS_ROWS: String(ROWS),
      PS_LOCK_MS: '2000',
      PS_STALLED_MS: '1000',
      PS_DELAYS: '-1:25',
      PS_QUEUES: 'train-shard',
    };
    procs.push(...(await Promise.all(['shard-a', 'shard-b', 'shard-spare'].map((name) => startPsProcess(name, base)))));
  });
  after(async () => {
    for (const p of procs) p.child.kill('SIGCONT');
    await stopAll(procs);
    await env.teardown();
  });

  it('is superseded by the attempt that took its job over, which finishes the run', async (t) => {
    const request = trainRequestSchema.parse({
      model: {
        name: 'stalled',
        layers: [
          { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'mnist' },
      fit: { epochs: 5, batchSize: 32, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 6 },
      distributed: { workers: 2, mode: 'sync', stepTimeoutMs: 1000, quorum: 1, checkpointEvery: 10 },
    });
    const job = await env.submit(request);
    const runId = runIdOf(job.id!);
    await env.waitForAggregator(runId, (p) => p.step >= 10, 600_000);
    const first = await env.shardQueue.getJob(shardJobId(runId, 1));
    const stalled = procs.find((p) => p.name === first?.processedBy);
    assert.ok(stalled, `shard 1 runs on ${first?.processedBy}`);
    stalled.child.kill('SIGSTOP');
    // Its lock lapses; the idle process takes the job over.
    const taker = await until('another process to take shard 1 over', async () => {
      const j = await env.shardQueue.getJob(shardJobId(runId, 1));
      return j && j.processedBy !== stalled.name && (await j.getState()) === 'active' ? j.processedBy : undefined;
    });
    stalled.child.kill('SIGCONT');
    await until('the stalled attempt to stop', async () =>
      stalled.output.join('').includes('superseded') ? true : undefined,
    );
    const result = await job.waitUntilFinished(env.events, 600_000);
    t.diagnostic(
      `stalled ${stalled.name}, taken over by ${taker}; it said: ${stalled.output
        .join('')
        .split('\n')
        .find((l) => l.startsWith('superseded'))}`,
    );

    assert.match(stalled.output.join(''), /superseded: run \S+: this attempt of the shard:1 was superseded/);
    assert.equal(result.distributed?.steps, 5 * 29);
    assert.equal((await env.registry.versions('stalled')).length, 1);
    const done = await env.shardQueue.getJob(shardJobId(runId, 1));
    assert.equal(await done?.getState(), 'completed');
    assert.equal(done?.processedBy, taker);
  });
});
