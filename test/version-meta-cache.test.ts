import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_TENANT } from '@tq/contracts';
import { attachOnnx } from '@tq/ml';
import { createRedisClient, versionMetaChannel, type RedisClient } from '@tq/queue';
import { ArtifactStore, ModelRegistry, ProcessVersionMetaCache, modelSaveHandler } from '@tq/storage';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

const F = 4;
const ROW = [[0.5, -1, 2, 0.25]];

function makeModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [F] }));
  return m;
}

/** What a worker's registry does on a change (RedisVersionMetaCache.changed): publish the key prefix. */
class PublishingCache extends ProcessVersionMetaCache {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {
    super(10);
  }
  override async changed(keyPrefix: string): Promise<void> {
    await super.changed(keyPrefix);
    await this.redis.publish(versionMetaChannel(this.prefix), keyPrefix);
  }
}

/**
 * The API and serve replicas cache version metadata (no metadata.json read per predict); another
 * process's change to a version (an artifact attached, the model removed) reaches them over Redis
 * pub/sub. Run inline (the API predicts) and on a replica (SERVE_MODE=replicas: the replica's
 * cache decides which artifact answers).
 */
const WHERE = [
  { where: 'in the API', env: {} },
  { where: 'on a serve replica', env: { SERVE_MODE: 'replicas' } },
];

for (const { where, env } of WHERE)
  describe(`version metadata cache across processes, predicts ${where}`, () => {
    let system: TestSystem;
    let redis: RedisClient;
    let registry: ModelRegistry;
    const model = makeModel();

    before(async () => {
      system = await TestSystem.start({ workers: 0, env });
      if (env.SERVE_MODE) await system.addServeReplica();
      redis = createRedisClient({ REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }, 'worker');
      registry = new ModelRegistry(
        new ArtifactStore(system.artifactDir).forTenant(DEFAULT_TENANT),
        new PublishingCache(redis, system.prefix),
      );
      for (const name of ['late-onnx', 'gone'])
        await registry.register(
          name,
          {
            inputShape: [F],
            featureCount: F,
            classes: ['a', 'b'],
            lineage: { kind: 'trained' },
            weightDtype: 'float32',
          },
          async (out) => {
            await model.save(modelSaveHandler(out));
          },
        );
      // The API lists replicas at most once a second: until it has, SERVE_MODE=replicas answers 503.
      await waitFor('the first predict', async () => ((await predict('gone')).status === 503 ? undefined : true));
    });
    after(async () => {
      model.dispose();
      redis.disconnect();
      await system.stop();
    });

    const predict = (name: string) =>
      system.request('POST', `/v1/models/${name}/versions/1/predict`, { instances: ROW });

    it('an artifact attached after the commit is served once its change is published', async () => {
      const before = await predict('late-onnx');
      assert.equal(before.status, 200, JSON.stringify(before.body));
      assert.equal(before.body.engine, 'tfjs');
      await attachOnnx(registry, { name: 'late-onnx', version: 1 }, model);
      await waitFor('the API to serve model.onnx', async () => {
        const res = await predict('late-onnx');
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.engine === 'onnxruntime' ? true : undefined;
      });
      const view = await system.request('GET', '/v1/models/late-onnx/versions/1');
      assert.ok(view.body.urls['model.onnx'], JSON.stringify(view.body));
    });

    it('a removed model is a 404 once its removal is published, not served from the cache', async () => {
      assert.equal((await predict('gone')).status, 200);
      await registry.removeModel('gone');
      const res = await waitFor('the API to forget the removed model', async () => {
        const r = await predict('gone');
        return r.status === 200 ? undefined : r;
      });
      assert.equal(res.status, 404, JSON.stringify(res.body));
      assert.equal(res.body.issues[0].field, 'version');
    });
  });
