import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { aggregateResultSchema, trainRequestSchema, type TrainRequest } from '@tq/contracts';
import { initBackend } from '@tq/ml';
import { aggregatorJobId, makePlan, runIdOf } from '@tq/paramserver';
import { PsTestEnv } from './fixtures/harness';

const ROWS = 2000; // 1800 training rows
const layers: TrainRequest['model']['layers'] = [
  { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];
const request = (name: string, distributed: object, epochs = 2): TrainRequest =>
  trainRequestSchema.parse({
    model: { name, layers },
    dataset: { builtin: 'mnist' },
    fit: { epochs, batchSize: 32, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 5 },
    distributed,
  });

describe('async and local modes', () => {
  const env = new PsTestEnv();
  before(async () => {
    await initBackend();
    // Two shards in this process; after computing each step shard 1 sleeps 100 ms, shard 0 10 ms.
    await env.setupRun({
      rows: ROWS,
      shardConcurrency: 2,
      delays: { 0: 10, 1: 100 },
    });
    env.startCoordinator(ROWS);
  });
  after(() => env.teardown());

  it("async: a slowed worker's stale gradients are dropped and counted; every other one is applied", async (t) => {
    // Each shard walks the whole schedule (its slice of every global step): 2 x totalSteps gradients.
    const req = request('asyncrun', { workers: 2, mode: 'async', staleness: 1, checkpointEvery: 20 }, 1);
    const { id, result } = await env.train(req);
    const outcome = aggregateResultSchema.parse(
      (await env.aggregateQueue.getJob(aggregatorJobId(runIdOf(id))))?.returnvalue,
    );
    const plan = makePlan({ trainRows: 1800, workers: 2, batchPerWorker: 32, epochs: 1, seed: 5, shuffle: true });
    t.diagnostic(
      `applied ${outcome.steps}, dropped ${outcome.droppedStale}, shares ${JSON.stringify(outcome.workers)}, valAccuracy ${result.metrics.valAccuracy}`,
    );
    assert.equal(
      outcome.steps + outcome.droppedStale,
      2 * plan.totalSteps,
      'every gradient is either applied or dropped',
    );
    assert.equal(result.distributed?.droppedStale, outcome.droppedStale);
    assert.equal(result.distributed?.mode, 'async');
    // While the slow worker sleeps the fast one moves the weights on by more than `staleness` versions.
    assert.ok((outcome.workers['shard-1']?.dropped ?? 0) > 0, 'the slow worker had gradients dropped');
    assert.equal(
      outcome.droppedStale,
      (outcome.workers['shard-0']?.dropped ?? 0) + (outcome.workers['shard-1']?.dropped ?? 0),
    );
    assert.equal(outcome.slowestWorker, 'shard-1');
    // Only applied gradients count as contributed rows.
    assert.equal(outcome.samples, outcome.workers['shard-0']!.samples + (outcome.workers['shard-1']?.samples ?? 0));
    assert.ok((result.metrics.valAccuracy ?? 0) > 0.7, `valAccuracy ${result.metrics.valAccuracy}`);
  });

  it('local: workers take syncEvery local steps, the aggregator averages their weights; it converges', async (t) => {
    const req = request('localrun', { workers: 2, mode: 'local', syncEvery: 4, checkpointEvery: 8 }, 3);
    const { id, result } = await env.train(req);
    const outcome = aggregateResultSchema.parse(
      (await env.aggregateQueue.getJob(aggregatorJobId(runIdOf(id))))?.returnvalue,
    );
    const plan = makePlan({ trainRows: 1800, workers: 2, batchPerWorker: 32, epochs: 3, seed: 5, shuffle: true });
    t.diagnostic(
      `steps ${outcome.steps}, versions ${outcome.weightsVersion}, history ${JSON.stringify(outcome.history.map((h) => [h.loss?.toFixed(3), h.valAccuracy]))}`,
    );
    assert.equal(outcome.steps, plan.totalSteps);
    // One published version per round of 4 local steps (plus the initial one, version 0).
    assert.equal(outcome.weightsVersion, Math.ceil(plan.totalSteps / 4));
    const h = outcome.history;
    assert.equal(h.length, 3);
    assert.ok(h[2]!.loss! < h[0]!.loss!, `loss ${h[0]!.loss} -> ${h[2]!.loss}`);
    assert.ok((result.metrics.valAccuracy ?? 0) >= 0.85, `valAccuracy ${result.metrics.valAccuracy}`);
  });
});
