import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import type { ModelRef, ModelVersionMeta } from '@tq/contracts';
import { ArtifactStore, modelSaveHandler, ModelRegistry } from '@tq/storage';
import {
  attachOnnx,
  cudaProviderInstalled,
  FeatureCountError,
  InferenceEngine,
  initBackend,
  mulberry32,
  ONNX_ARTIFACT,
  ONNX_INT8_ARTIFACT,
  resolveExecutionProviders,
  toPredictions,
} from '@tq/ml';

const F = 6;
const CLASSES = ['a', 'b', 'c'];

function makeModel(seed: number): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 8,
      activation: 'relu',
      inputShape: [F],
      kernelInitializer: tf.initializers.glorotUniform({ seed }),
      biasInitializer: 'ones',
    }),
  );
  m.add(
    tf.layers.dense({
      units: 3,
      activation: 'softmax',
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }),
    }),
  );
  return m;
}

function randomRows(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n * F }, () => rand() * 4 - 2);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('InferenceEngine', () => {
  let root: string;
  let registry: ModelRegistry;
  const models = new Map<string, tf.LayersModel>();
  let baseline: number;

  async function register(name: string, seed: number): Promise<ModelRef> {
    const model = makeModel(seed);
    models.set(name, model);
    const meta = await registry.register(
      name,
      { inputShape: [F], featureCount: F, classes: CLASSES, lineage: { kind: 'trained' }, weightDtype: 'float32' },
      async (out) => {
        await model.save(modelSaveHandler(out));
      },
    );
    return { name: meta.name, version: meta.version };
  }
  const expected = (name: string, rows: Float32Array, n: number) =>
    tf.tidy(() => (models.get(name)!.predict(tf.tensor2d(rows, [n, F])) as tf.Tensor).dataSync() as Float32Array);

  before(async () => {
    await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-infer-'));
    registry = new ModelRegistry(new ArtifactStore(root));
    await register('alpha', 1);
    await register('beta', 11);
    await register('gamma', 21);
    baseline = tf.memory().numTensors;
  });
  after(async () => {
    for (const m of models.values()) m.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('serves a version without ONNX through tfjs in batches, yielding the event loop between them, then onnxruntime once model.onnx is attached', async () => {
    const engine = new InferenceEngine({ registry, cacheSize: 4, yieldIntervalMs: 0 });
    const rows = randomRows(50, 5);
    let ticks = 0;
    let spinning = true;
    const spin = () => {
      ticks++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const viaTfjs = await engine.predict({ name: 'alpha', version: 1 }, rows, 50, { batchSize: 7 });
    spinning = false;
    assert.equal(viaTfjs.engine, 'tfjs');
    assert.equal(viaTfjs.outputSize, 3);
    assert.ok(maxDiff(viaTfjs.scores, expected('alpha', rows, 50)) <= 1e-6);
    assert.ok(ticks >= 6, `the event loop ran ${ticks} times during 8 tfjs batches`); // tfjs predict is synchronous: only the engine yields

    const meta = await attachOnnx(registry, { name: 'alpha', version: 1 }, models.get('alpha')!);
    assert.ok(meta.artifacts[ONNX_ARTIFACT]! > 0);
    const viaOrt = await engine.predict({ name: 'alpha', version: 1 }, rows, 50, { batchSize: 7 });
    assert.equal(viaOrt.engine, 'onnxruntime');
    assert.ok(maxDiff(viaOrt.scores, viaTfjs.scores) <= 1e-5);
    assert.deepEqual(engine.stats, { loads: 2, releases: 1 }, 'the tfjs model was replaced and released');
    await engine.close();
    assert.equal(tf.memory().numTensors, baseline, 'tensors left behind');
  });

  it('with the default yield interval, a long predict still lets the event loop run', async () => {
    const engine = new InferenceEngine({ registry, cacheSize: 1 });
    const rows = randomRows(2000, 8);
    let ticks = 0;
    let spinning = true;
    const spin = () => {
      ticks++;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    await engine.predict({ name: 'beta', version: 1 }, rows, 2000, { batchSize: 1 }); // 2000 synchronous tfjs predicts
    spinning = false;
    assert.ok(ticks >= 3, `the event loop ran ${ticks} times`);
    await engine.close();
  });

  it('rejects rows of the wrong width with a typed error naming the feature count', async () => {
    const engine = new InferenceEngine({ registry, cacheSize: 2 });
    await assert.rejects(
      engine.predict({ name: 'beta', version: 1 }, new Float32Array(F * 3 - 1), 3),
      (err: unknown) =>
        err instanceof FeatureCountError && err.expectedFeatureCount === F && /takes 6 features/.test(err.message),
    );
    await assert.rejects(
      engine.predict({ name: 'nope', version: 1 }, new Float32Array(F), 1),
      /does not exist|no version/,
    );
    await engine.close();
    await assert.rejects(engine.predict({ name: 'beta', version: 1 }, new Float32Array(F), 1), /closed/);
  });

  it('keeps cacheSize models, releases the least recently used, and one evicted mid-predict only after that predict', async () => {
    // The real registry, telling when a predict has read its version (it takes its model right after).
    let versionRead: (() => void) | undefined;
    const watched = new (class extends ModelRegistry {
      override async getVersion(ref: ModelRef): Promise<ModelVersionMeta> {
        const meta = await super.getVersion(ref);
        versionRead?.();
        return meta;
      }
    })(registry.store);
    const engine = new InferenceEngine({ registry: watched, cacheSize: 1, yieldIntervalMs: 0 });
    const rows = randomRows(1000, 9);
    const beta = { name: 'beta', version: 1 };
    const gamma = { name: 'gamma', version: 1 };
    await engine.predict(beta, rows.subarray(0, 10 * F), 10);
    assert.deepEqual(engine.cached(), ['beta/1']);
    // beta runs 1000 one-row batches, yielding between them; gamma is loaded meanwhile and evicts it while in use.
    let betaDone = false;
    const betaHasVersion = new Promise<void>((resolve) => (versionRead = resolve));
    const pending = engine.predict(beta, rows, 1000, { batchSize: 1 }).then((r) => {
      betaDone = true;
      return r;
    });
    // gamma starts only once beta holds its model: otherwise gamma could load first and beta evict it.
    await betaHasVersion;
    versionRead = undefined;
    await new Promise((resolve) => setImmediate(resolve));
    const g = await engine.predict(gamma, rows, 1000);
    assert.equal(betaDone, false, 'beta finished before gamma evicted it: the test did not exercise eviction in use');
    assert.deepEqual(engine.cached(), ['gamma/1']);
    assert.deepEqual(engine.stats, { loads: 2, releases: 0 }, 'beta released while still predicting');
    const b = await pending; // it completes correctly on its model, released only now
    assert.ok(maxDiff(b.scores, expected('beta', rows, 1000)) <= 1e-6);
    assert.ok(maxDiff(g.scores, expected('gamma', rows, 1000)) <= 1e-6);
    await engine.close();
    assert.deepEqual(engine.stats, { loads: 2, releases: 2 });
    assert.equal(tf.memory().numTensors, baseline);
  });

  it("keeps two tenants' versions of one name apart in one shared cache", async () => {
    const store = new ArtifactStore(root);
    const write = (seed: number) => async (out: Parameters<Parameters<ModelRegistry['register']>[2]>[0]) => {
      const model = makeModel(seed);
      await model.save(modelSaveHandler(out));
      model.dispose();
    };
    const meta = {
      inputShape: [F],
      featureCount: F,
      classes: CLASSES,
      lineage: { kind: 'trained' as const },
      weightDtype: 'float32' as const,
    };
    await new ModelRegistry(store.forTenant('ta')).register('twin', meta, write(31));
    await new ModelRegistry(store.forTenant('tb')).register('twin', meta, write(41));
    const engine = new InferenceEngine({ registry, cacheSize: 4 });
    const rows = randomRows(3, 7);
    const ref = { name: 'twin', version: 1 };
    const a = await engine.forTenant('ta').predict(ref, rows, 3);
    const b = await engine.forTenant('tb').predict(ref, rows, 3);
    assert.ok(maxDiff(a.scores, b.scores) > 1e-3, "each tenant's own weights");
    assert.deepEqual(engine.cached(), ['tenants/ta/twin/1', 'tenants/tb/twin/1'], 'one cache, keyed by tenant');
    await assert.rejects(engine.predict(ref, rows, 3), /has no version 1/, 'not at the root');
    await engine.forTenant('ta').close();
    assert.deepEqual(engine.stats, { loads: 2, releases: 2 }, 'closing a view closes the shared cache');
  });

  it('evicts by recency of use, not of loading, and refuses a cache size that is not a positive integer', async () => {
    const engine = new InferenceEngine({ registry, cacheSize: 2 });
    const rows = randomRows(4, 12);
    for (const name of ['alpha', 'beta', 'alpha', 'gamma']) await engine.predict({ name, version: 1 }, rows, 4);
    assert.deepEqual(engine.cached(), ['alpha/1', 'gamma/1'], 'least recently used first; beta was pushed out');
    assert.deepEqual(engine.stats, { loads: 3, releases: 1 });
    await engine.close();
    assert.deepEqual(engine.stats, { loads: 3, releases: 3 });
    for (const cacheSize of [0, 1.5, -1]) {
      assert.throws(() => new InferenceEngine({ registry, cacheSize }), /cache size must be a positive integer/);
    }
  });

  it('keeps at most cacheBytes of models (their files), and one model over the budget alone', async () => {
    // Three tfjs-only models of one architecture: the same size each.
    for (const [name, seed] of [
      ['t1', 31],
      ['t2', 41],
      ['t3', 51],
    ] as const)
      await register(name, seed);
    const meta = await registry.getVersion({ name: 't1', version: 1 });
    const oneModel = meta.artifacts['model.json']! + meta.artifacts['weights.bin']!;
    const rows = randomRows(4, 13);
    const two = new InferenceEngine({ registry, cacheSize: 8, cacheBytes: 2 * oneModel });
    for (const name of ['t1', 't2', 't3']) await two.predict({ name, version: 1 }, rows, 4);
    assert.deepEqual(two.cached(), ['t2/1', 't3/1'], 'two models fit; t1, least recently used, went');
    await two.close();
    const small = new InferenceEngine({ registry, cacheSize: 8, cacheBytes: Math.floor(oneModel / 2) });
    for (const name of ['t1', 't1', 't2']) await small.predict({ name, version: 1 }, rows, 4);
    assert.deepEqual(small.cached(), ['t2/1']);
    assert.deepEqual(small.stats, { loads: 2, releases: 1 }, 't1 stayed loaded for its second predict');
    await small.close();
    assert.throws(() => new InferenceEngine({ registry, cacheSize: 2, cacheBytes: 0 }), /cache bytes must be/);
  });

  it('prefers model.int8.onnx when attached (int8 compute, close to float) unless told not to', async () => {
    const ref = { name: 'gamma', version: 1 };
    const calibration = randomRows(200, 3);
    const meta = await attachOnnx(registry, ref, models.get('gamma')!, { quantize: 'int8', calibration });
    assert.ok(meta.artifacts[ONNX_ARTIFACT]! > 0 && meta.artifacts[ONNX_INT8_ARTIFACT]! > 0);
    const rows = randomRows(64, 4);
    const int8 = new InferenceEngine({ registry, cacheSize: 2 });
    const float = new InferenceEngine({ registry, cacheSize: 2, preferInt8: false, intraOpNumThreads: 1 });
    const [q, f] = [await int8.predict(ref, rows, 64), await float.predict(ref, rows, 64)];
    const d = maxDiff(q.scores, f.scores);
    assert.ok(d > 0 && d < 0.05, `int8 vs float max |diff| ${d}`);
    assert.ok(maxDiff(f.scores, expected('gamma', rows, 64)) <= 1e-5);
    await Promise.all([int8.close(), float.close()]);
    await assert.rejects(
      attachOnnx(
        registry,
        { name: 'beta', version: 1 },
        tf.sequential({ layers: [tf.layers.dense({ units: 2, inputShape: [F + 1] })] }),
      ),
      /takes 6 features/,
    );
  });

  it("passes ORT_ALLOW_SPINNING to onnxruntime's pool either way, with the same scores", async () => {
    const ref = { name: 'gamma', version: 1 };
    const rows = randomRows(32, 6);
    // Two pool threads, so there is a pool whose threads spin or sleep; a malformed setting fails the session's creation.
    const engines = [true, false].map(
      (allowSpinning) =>
        new InferenceEngine({ registry, cacheSize: 1, preferInt8: false, intraOpNumThreads: 2, allowSpinning }),
    );
    const [spin, sleep] = await Promise.all(engines.map((e) => e.predict(ref, rows, 32)));
    assert.equal(spin!.engine, 'onnxruntime');
    assert.equal(sleep!.engine, 'onnxruntime');
    assert.deepEqual(spin!.scores, sleep!.scores);
    assert.ok(maxDiff(sleep!.scores, expected('gamma', rows, 32)) <= 1e-5);
    await Promise.all(engines.map((e) => e.close()));
  });

  it('formats predictions with the top class and its label', () => {
    const scores = Float32Array.of(0.1, 0.7, 0.2, 0.5, 0.5, 0);
    assert.deepEqual(
      toPredictions(scores, 3, CLASSES).map((p) => [p.classIndex, p.label]),
      [
        [1, 'b'],
        [0, 'a'],
      ],
    );
    assert.equal(toPredictions(scores, 3, [])[0]!.label, undefined);
    assert.ok(Math.abs(toPredictions(scores, 3)[0]!.scores[1]! - 0.7) < 1e-7);
    assert.throws(() => toPredictions(scores, 4), RangeError);
  });

  it('picks onnxruntime execution providers: the setting, validated, cpu last; CUDA only when its library is installed', () => {
    assert.deepEqual(resolveExecutionProviders('cpu'), ['cpu']);
    assert.deepEqual(resolveExecutionProviders('cuda'), ['cuda', 'cpu']);
    assert.throws(() => resolveExecutionProviders('cuda,warp-drive'), /warp-drive/);
    const auto = resolveExecutionProviders();
    assert.equal(auto.at(-1), 'cpu');
    assert.equal(auto.includes('cuda'), cudaProviderInstalled());
  });
});
