import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { trainRequestSchema, type TrainRequest } from '@tq/contracts';
import { buildModel, initBackend, loadModelVersion, trainModel } from '@tq/ml';
import { runCheckpointPaths, runIdOf } from '@tq/paramserver';
import { mnistSlice, PsTestEnv } from './fixtures/harness';

const ROWS = 500; // 450 training rows, 50 validation rows
const layers: TrainRequest['model']['layers'] = [
  { type: 'dense', units: 24, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];

function request(workers: number, batchSize: number): TrainRequest {
  return trainRequestSchema.parse({
    model: { name: `eq${workers}`, layers },
    dataset: { builtin: 'mnist' },
    fit: { epochs: 2, batchSize, optimizer: 'adam', learningRate: 0.01, validationSplit: 0.1, seed: 7 },
    distributed: { workers, mode: 'sync', checkpointEvery: 5 },
  });
}

/**
 * Sync data parallelism with N shards of b rows must equal single-process training (trainModel,
 * the product's local loop) with batches of N x b rows: the same data order, and the rows-weighted
 * mean of the shards' mean-loss gradients is the gradient of the whole batch. Batch sizes are
 * chosen so the last batch of an epoch is partial (split unevenly is impossible; split 7/7/7 etc.).
 */
describe('sync parameter server == single-process training with the global batch', () => {
  const env = new PsTestEnv();
  before(async () => {
    await initBackend();
    await env.setupRun({
      rows: ROWS,
      shardConcurrency: 3,
    });
    env.startCoordinator(ROWS);
  });
  after(() => env.teardown());

  for (const [workers, b] of [
    [2, 16],
    [3, 11],
  ] as const) {
    it(`${workers} workers x batch ${b} == 1 process x batch ${workers * b}`, async () => {
      const req = request(workers, b);
      const { id, result } = await env.train(req);

      // Reference: the product's own single-process loop, same seed, batch N x b.
      const data = mnistSlice(ROWS);
      const reference = buildModel(layers, { seed: req.fit.seed });
      const local = await trainModel({ model: reference, data, fit: { ...req.fit, batchSize: workers * b } });

      const { model, meta } = await loadModelVersion(env.registry, result.model);
      const got = model.getWeights().map((w) => w.dataSync());
      const want = reference.getWeights().map((w) => w.dataSync());
      assert.equal(got.length, want.length);
      let maxDiff = 0;
      let maxAbs = 0;
      for (let i = 0; i < got.length; i++) {
        for (let k = 0; k < want[i]!.length; k++) {
          maxDiff = Math.max(maxDiff, Math.abs(got[i]![k]! - want[i]![k]!));
          maxAbs = Math.max(maxAbs, Math.abs(want[i]![k]!));
        }
      }
      // Float tolerance: the sums run in another order (per shard, then across shards). Adam divides
      // by sqrt(v), so a near-zero gradient's rounding can move a weight by up to a fraction of the
      // learning rate (0.01): measured here 3e-7 (N=2) and 7e-5 (N=3); a wrong data order gives ~0.3.
      assert.ok(maxDiff < 5e-4, `max |w_ps - w_local| = ${maxDiff} (weights up to ${maxAbs})`);
      // The weights moved a lot from their start: equality is not two untrained models agreeing.
      const initial = buildModel(layers, { seed: req.fit.seed });
      const moved = Math.max(
        ...initial
          .getWeights()
          .map((w, i) => tf.tidy(() => tf.max(tf.abs(tf.sub(w, reference.getWeights()[i]!))).dataSync()[0]!)),
      );
      assert.ok(moved > 100 * maxDiff, `training moved weights by ${moved}`);

      // Same per-epoch figures as the local loop (train loss/accuracy means, validation).
      assert.equal(meta.history?.length, 2);
      for (const [e, h] of (meta.history ?? []).entries()) {
        const l = local.history[e]!;
        for (const k of ['loss', 'accuracy', 'valLoss', 'valAccuracy'])
          assert.ok(Math.abs(h[k]! - l[k]!) < 1e-3, `epoch ${e + 1} ${k}: ${h[k]} vs ${l[k]}`);
      }
      assert.equal(meta.lineage.kind, 'trained');
      assert.equal(meta.lineage.jobId, id);
      assert.equal(result.distributed?.workers, workers);
      assert.equal(result.distributed?.steps, 2 * Math.ceil(450 / (workers * b)));
      assert.equal(result.distributed?.droppedStale, 0);
      assert.equal((await env.registry.versions(req.model.name)).length, 1);

      // The run left nothing behind but its tiny expiring end marker, and no checkpoint folder.
      const runKeys = await env.keys(`ps:{${runIdOf(id)}}:*`);
      assert.deepEqual(runKeys, [`${env.prefix}:ps:{${runIdOf(id)}}:ended`]);
      assert.ok((await env.redis.pttl(runKeys[0]!)) > 0);
      assert.equal(await env.hasObjects(runCheckpointPaths(env.store, runIdOf(id)).prefix.prefix), false);
      tf.dispose(
        [initial, reference, model].flatMap((m) => {
          m.dispose();
          return [];
        }),
      );
    });
  }
});
