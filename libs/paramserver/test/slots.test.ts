import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aggregateResultSchema, trainRequestSchema, type TrainProgress } from '@tq/contracts';
import { initBackend } from '@tq/ml';
import { aggregatorJobId, runIdOf } from '@tq/paramserver';
import { PsTestEnv } from './fixtures/harness';

const ROWS = 400; // 360 training rows: 15 steps of 3 x 8

/**
 * A run of 3 workers on a deployment with two train-shard slots: the third shard's job waits for a
 * slot the whole run. The user is told (progress, log), and sync steps do not wait out their step
 * timeout for a shard no worker has taken. The timeout here is ten minutes: a run that waited it
 * out would not finish within the test's wait.
 */
describe('a run with more workers than train-shard slots', () => {
  const env = new PsTestEnv();
  const progress: TrainProgress[] = [];
  const aggregatorLog: string[] = [];
  before(async () => {
    await initBackend();
    await env.setupRun({
      rows: ROWS,
      shardConcurrency: 2,
      aggregatorLog,
    });
    env.startCoordinator(ROWS, (p) => progress.push(p));
  });
  after(() => env.teardown());

  it('reports waitingForWorkers, logs the missing slots, and steps go on with the shards that have a worker', async (t) => {
    const request = trainRequestSchema.parse({
      model: {
        name: 'short',
        layers: [
          { type: 'dense', units: 16, activation: 'relu', inputShape: [784] },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'mnist' },
      fit: { epochs: 1, batchSize: 8, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 4 },
      distributed: { workers: 3, mode: 'sync', quorum: 2, stepTimeoutMs: 600_000 },
    });
    const { id, result } = await env.train(request, 600_000);
    const outcome = aggregateResultSchema.parse(
      (await env.aggregateQueue.getJob(aggregatorJobId(runIdOf(id))))?.returnvalue,
    );
    const lines = env.logs.get(id) ?? [];
    t.diagnostic(`coordinator log: ${JSON.stringify(lines)}; shares ${JSON.stringify(outcome.workers)}`);

    assert.equal(result.distributed?.steps, 15);
    assert.ok(
      progress.some((p) => p.waitingForWorkers === 1),
      JSON.stringify(progress.slice(0, 5)),
    );
    const slotLine = lines.find((l) => /shard 2 of 3 waits for a free train-shard slot/.test(l));
    assert.ok(slotLine, JSON.stringify(lines));
    assert.match(slotLine, /needs 3 train-shard slots/);
    // Only the two shards with a worker contributed; no step waited out its timeout.
    assert.deepEqual(Object.keys(outcome.workers).sort(), ['shard-0', 'shard-1']);
    assert.deepEqual(
      aggregatorLog.filter((l) => /closed after/.test(l)),
      [],
    );
  });
});
