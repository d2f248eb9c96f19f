import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { trainRequestSchema, type ModelRef, type TrainRequest } from '@tq/contracts';
import { initBackend, loadModelVersion, prunableKernels } from '@tq/ml';
import { PsTestEnv } from './fixtures/harness';

const ROWS = 2000; // 1800 training rows
const SPARSITY = 0.8;
const layers: TrainRequest['model']['layers'] = [
  { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];
const fit = { epochs: 2, batchSize: 32, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 5 };

/** Each kernel's zero positions, in layer order. */
async function zerosOf(env: PsTestEnv, ref: ModelRef): Promise<Array<{ n: number; zeros: Set<number> }>> {
  const { model } = await loadModelVersion(env.registry, ref);
  try {
    return prunableKernels(model).map((v) => {
      const w = v.read().dataSync();
      const zeros = new Set<number>();
      w.forEach((x, i) => x === 0 && zeros.add(i));
      return { n: w.length, zeros };
    });
  } finally {
    model.dispose();
  }
}

/**
 * fit.prune in data-parallel runs: the parameter server owns the weights, so it re-applies the
 * masks after every update (sync gradients, async gradients, local averages) before publishing.
 */
describe('fit.prune on the parameter server', () => {
  const env = new PsTestEnv();
  let pruned: ModelRef;
  before(async () => {
    await initBackend();
    await env.setupRun({ rows: ROWS, shardConcurrency: 2 });
    env.startCoordinator(ROWS);
  });
  after(() => env.teardown());

  it('sync, polynomial: every kernel ends at the target sparsity and the model still learns', async () => {
    const { result } = await env.train(
      trainRequestSchema.parse({
        model: { name: 'pruned', layers },
        dataset: { builtin: 'mnist' },
        fit: { ...fit, prune: { sparsity: SPARSITY, schedule: 'polynomial' } },
        distributed: { workers: 2, mode: 'sync' },
      }),
    );
    pruned = result.model;
    for (const { n, zeros } of await zerosOf(env, pruned)) {
      // The masks zero exactly floor(s × n) per kernel; a weight trained to exactly 0 is all that could add one.
      assert.ok(
        zeros.size >= Math.floor(SPARSITY * n) && zeros.size <= Math.floor(SPARSITY * n) + 1,
        `${zeros.size}/${n}`,
      );
    }
    assert.ok((result.metrics.valAccuracy ?? 0) > 0.75, `valAccuracy ${result.metrics.valAccuracy}`);
  });

  for (const mode of ['async', 'local'] as const) {
    it(`${mode}, fine-tuning the pruned version one-shot: the zeros it starts with are the zeros it ends with`, async () => {
      const before = await zerosOf(env, pruned);
      for (const { n, zeros } of before) assert.ok(zeros.size >= Math.floor(SPARSITY * n), 'the source is pruned');
      const { result } = await env.train(
        trainRequestSchema.parse({
          model: { name: 'pruned', from: pruned },
          dataset: { builtin: 'mnist' },
          fit: { ...fit, epochs: 1, prune: { sparsity: SPARSITY } },
          distributed: { workers: 2, mode, syncEvery: 4 },
        }),
      );
      const after = await zerosOf(env, result.model);
      after.forEach(({ zeros }, k) => assert.deepEqual([...zeros].sort(), [...before[k]!.zeros].sort(), `kernel ${k}`));
    });
  }

  it('without fit.prune the same fine-tune grows the pruned weights back (what the masks prevent)', async () => {
    const { result } = await env.train(
      trainRequestSchema.parse({
        model: { name: 'pruned', from: pruned },
        dataset: { builtin: 'mnist' },
        fit: { ...fit, epochs: 1 },
        distributed: { workers: 2, mode: 'sync' },
      }),
    );
    // Weights of MNIST's always-blank border pixels get no gradient and stay zero; the rest grow back.
    for (const { n, zeros } of await zerosOf(env, result.model))
      assert.ok(zeros.size < 0.5 * SPARSITY * n, `${zeros.size}/${n}`);
  });
});
