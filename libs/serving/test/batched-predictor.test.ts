import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelVersionMeta } from '@tq/contracts';
import { InferenceEngine, initBackend } from '@tq/ml';
import { BatchedPredictor } from '@tq/serving';
import { ArtifactStore, ModelRegistry, modelSaveHandler } from '@tq/storage';

const F = 4;

/** BatchedPredictor over a real engine and registry: a batcher per tenant and version, bounded. */
describe('BatchedPredictor', () => {
  let root: string;
  let engine: InferenceEngine;
  const versions: ModelVersionMeta[] = [];

  before(async () => {
    await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-batched-'));
    const registry = new ModelRegistry(new ArtifactStore(root)).forTenant('t');
    for (let i = 0; i < 4; i++) {
      const model = tf.sequential();
      model.add(tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [F] }));
      const meta = { inputShape: [F], featureCount: F, classes: ['a', 'b', 'c'], weightDtype: 'float32' as const };
      versions.push(
        await registry.register('crowd', { ...meta, lineage: { kind: 'trained' } }, async (out) => {
          await model.save(modelSaveHandler(out));
        }),
      );
      model.dispose();
    }
    engine = new InferenceEngine({ registry: new ModelRegistry(new ArtifactStore(root)), cacheSize: 4 });
  });
  after(async () => {
    await engine?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('keeps at most maxBatchers, closing the least recently used idle ones; each still answers', async () => {
    const predictor = new BatchedPredictor(engine, {
      maxBatchSize: 8,
      maxDelayMs: 1,
      maxQueueRows: 64,
      timeoutMs: 10_000,
      maxBatchers: 2,
    });
    const ask = (meta: ModelVersionMeta) => predictor.predict('t', meta, { instances: [[1, 2, 3, 4]] });
    for (const meta of versions) {
      const answer = await ask(meta);
      assert.equal(answer.model.version, meta.version);
      assert.equal(answer.predictions.length, 1);
    }
    assert.equal(predictor.batcherCount, 2);
    // An evicted version gets a new batcher when asked again, and answers as before.
    assert.equal((await ask(versions[0]!)).predictions.length, 1);
    assert.equal(predictor.batcherCount, 2);
    predictor.close();
  });
});
