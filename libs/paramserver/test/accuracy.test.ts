import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { trainRequestSchema, type TrainRequest } from '@tq/contracts';
import { buildModel, initBackend, loadBuiltinDataset, trainModel } from '@tq/ml';
import { PsTestEnv } from './fixtures/harness';
import { startPsProcess, stopAll, type PsProcess } from './fixtures/processes';

const ROWS = 10_000; // all of built-in MNIST: 9,000 training rows, 1,000 validation rows
const layers: TrainRequest['model']['layers'] = [
  { type: 'dense', units: 64, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];

/**
 * Three shard processes and an aggregator process train an MNIST MLP in sync mode, 32 rows per
 * worker per step, with the learning rate scaled by the worker count (0.003 = 3 x 0.001, the usual
 * rule when the global batch grows). Budget: 5 epochs, the same rows seen as single-worker training.
 */
describe('3 workers, sync, MNIST MLP', () => {
  const env = new PsTestEnv();
  const procs: PsProcess[] = [];
  before(async () => {
    await initBackend();
    await env.setup();
    env.startCoordinator(ROWS);
    const base = { PS_PREFIX: env.prefix, PS_ROOT: env.root, PS_ROWS: String(ROWS) };
    procs.push(
      ...(await Promise.all([
        startPsProcess('agg', { ...base, PS_QUEUES: 'aggregate' }),
        ...[0, 1, 2].map((i) => startPsProcess(`shard-p${i}`, { ...base, PS_QUEUES: 'train-shard' })),
      ])),
    );
  });
  after(async () => {
    await stopAll(procs);
    await env.teardown();
  });

  it('reaches the accuracy of single-worker training within 1 point', async (t) => {
    const fit = {
      epochs: 5,
      batchSize: 32,
      optimizer: 'adam',
      learningRate: 0.003,
      validationSplit: 0.1,
      seed: 1,
    } as const;
    const req = trainRequestSchema.parse({
      model: { name: 'digits3', layers },
      dataset: { builtin: 'mnist' },
      fit,
      distributed: { workers: 3, mode: 'sync' },
    });
    const { result } = await env.train(req, 300_000);

    const data = loadBuiltinDataset('mnist');
    const single = await trainModel({
      model: buildModel(layers, { seed: 1 }),
      data,
      fit: trainRequestSchema.parse({ ...req, distributed: undefined, fit: { ...fit, learningRate: 0.001 } }).fit,
    });
    const sameBatch = await trainModel({
      model: buildModel(layers, { seed: 1 }),
      data,
      fit: trainRequestSchema.parse({ ...req, distributed: undefined, fit: { ...fit, batchSize: 96 } }).fit,
    });
    const acc = result.metrics.valAccuracy!;
    t.diagnostic(
      `valAccuracy: 3 workers ${acc}, single worker (batch 32, lr 0.001) ${single.metrics.valAccuracy}, single process batch 96 ${sameBatch.metrics.valAccuracy}; samples/s: 3 workers ${result.samplesPerSec.toFixed(0)}, single ${single.samplesPerSec.toFixed(0)}`,
    );
    assert.ok(acc > 0.9, `valAccuracy ${acc}`);
    assert.ok(
      Math.abs(acc - single.metrics.valAccuracy!) <= 0.01,
      `3 workers ${acc} vs single worker ${single.metrics.valAccuracy}`,
    );
    // And, at full scale across processes, it is the single-process run with the global batch.
    assert.ok(
      Math.abs(acc - sameBatch.metrics.valAccuracy!) <= 0.003,
      `3 workers ${acc} vs batch 96 ${sameBatch.metrics.valAccuracy}`,
    );
    assert.equal(result.distributed?.steps, 5 * Math.ceil(9000 / 96));
  });
});
