import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aggregateResultSchema, trainRequestSchema } from '@tq/contracts';
import { aggregatorJobId, runIdOf, shardJobId } from '@tq/paramserver';
import { PsTestEnv } from './fixtures/harness';
import { kill9, startPsProcess, stopAll, type PsProcess } from './fixtures/processes';

const ROWS = 2000; // 1800 training rows: 19 steps per epoch with 3 x 32

/**
 * Real worker processes (BullMQ workers running this lib, as the worker app does), short job locks
 * so a dead process's job is noticed in seconds. One process more than the run needs for each role:
 * the idle one picks up the job of the process we SIGKILL, as another worker of the fleet would.
 */
describe('a run survives SIGKILLed worker processes', () => {
  const env = new PsTestEnv();
  const procs: PsProcess[] = [];
  before(async () => {
    await env.setup();
    env.startCoordinator(ROWS);
    const base = {
      PS_PREFIX: env.prefix,
      PS_ROOT: env.root,
      PS_ROWS: String(ROWS),
      PS_LOCK_MS: '2000',
      PS_STALLED_MS: '1000',
      PS_DELAYS: '-1:25',
    };
    const started = await Promise.all([
      startPsProcess('agg-a', { ...base, PS_QUEUES: 'aggregate' }),
      startPsProcess('agg-spare', { ...base, PS_QUEUES: 'aggregate' }),
      ...[0, 1, 2].map((i) => startPsProcess(`shard-p${i}`, { ...base, PS_QUEUES: 'train-shard' })),
      startPsProcess('shard-spare', { ...base, PS_QUEUES: 'train-shard' }),
    ]);
    procs.push(...started);
  });
  after(async () => {
    await stopAll(procs);
    await env.teardown();
  });

  it('kill a shard: steps close on the timeout with the quorum, the retried job rejoins; kill the aggregator: it resumes from its checkpoint', async (t) => {
    const request = trainRequestSchema.parse({
      model: {
        name: 'survivor',
        layers: [
          { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'mnist' },
      fit: { epochs: 5, batchSize: 32, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 3 },
      distributed: { workers: 3, mode: 'sync', stepTimeoutMs: 800, quorum: 2, checkpointEvery: 10 },
    });
    const job = await env.submit(request);
    const runId = runIdOf(job.id!);
    const byName = (name: string | undefined): PsProcess => {
      const p = procs.find((x) => x.name === name);
      assert.ok(p, `no process named ${name}`);
      return p;
    };

    // A shard process dies mid-run.
    await env.waitForAggregator(runId, (p) => p.step >= 12);
    const shard1 = await env.shardQueue.getJob(shardJobId(runId, 1));
    const victim = byName(shard1?.processedBy);
    await kill9(victim);

    // Later the aggregator's process dies; it has checkpointed at steps 10, 20, ...
    const agg = await env.waitForAggregator(runId, (p) => p.step >= 45, 90_000);
    const aggVictim = byName(agg.processedBy);
    await kill9(aggVictim);
    const stepAtKill = (agg.progress as { step: number }).step;

    const result = await job.waitUntilFinished(env.events, 120_000);
    const aggDone = await env.aggregateQueue.getJob(aggregatorJobId(runId));
    const outcome = aggregateResultSchema.parse(aggDone?.returnvalue);
    t.diagnostic(
      `killed ${victim.name} near step 12, ${aggVictim.name} at step ${stepAtKill}; resumed from ${outcome.resumedFromStep}; dropped ${outcome.droppedStale}; shares ${JSON.stringify(outcome.workers)}; valAccuracy ${result.metrics.valAccuracy}`,
    );

    // The run completed every step and registered one model that learned.
    assert.equal(result.distributed?.steps, 5 * 19);
    assert.equal(outcome.steps, 5 * 19);
    assert.equal((await env.registry.versions('survivor')).length, 1);
    assert.ok((result.metrics.valAccuracy ?? 0) > 0.8, `valAccuracy ${result.metrics.valAccuracy}`);

    // The aggregator was resumed by the other process from a checkpoint, not from scratch.
    assert.ok(
      aggDone?.processedBy?.startsWith('agg-') && aggDone.processedBy !== aggVictim.name,
      `finished by ${aggDone?.processedBy}`,
    );
    assert.equal(outcome.restarts, 1);
    assert.ok(
      outcome.resumedFromStep !== undefined && outcome.resumedFromStep > 0 && outcome.resumedFromStep % 10 === 0,
      `resumed from ${outcome.resumedFromStep}`,
    );
    assert.ok(
      outcome.resumedFromStep <= stepAtKill + 10,
      `resumed from ${outcome.resumedFromStep}, killed near ${stepAtKill}`,
    );

    // The killed shard's job was picked up again (by the idle shard process) and finished the run.
    const shardDone = await env.shardQueue.getJob(shardJobId(runId, 1));
    assert.equal(await shardDone?.getState(), 'completed');
    assert.ok(
      shardDone?.processedBy?.startsWith('shard-') && shardDone.processedBy !== victim.name,
      `finished by ${shardDone?.processedBy}`,
    );
    assert.ok((shardDone?.stalledCounter ?? 0) + (shardDone?.attemptsMade ?? 0) >= 1);
    // Every shard contributed rows; the one that was down for a while contributed fewest.
    const shares = outcome.workers;
    assert.deepEqual(Object.keys(shares).sort(), ['shard-0', 'shard-1', 'shard-2']);
    assert.ok(shares['shard-1']!.samples < shares['shard-0']!.samples, JSON.stringify(shares));
  });
});
