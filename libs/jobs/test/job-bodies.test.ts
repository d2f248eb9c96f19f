import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  CancelledError,
  TooLargeError,
  localJobMeta,
  trainRequestSchema,
  type InferProgress,
  type JobHooks,
  type TrainProgress,
} from '@tq/contracts';
import { compressJob, inferJob, runTraining } from '@tq/jobs';
import { loadConfig } from '@tq/config';
import { InferenceEngine, initBackend, type BackendInfo, type Budgets } from '@tq/ml';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';

/** The worker's job bodies, in-process: every job leaves tf.memory().numTensors where it found it. */
describe('job bodies', () => {
  let root: string;
  let backend: BackendInfo;
  let deps: {
    registry: ModelRegistry;
    datasets: DatasetStore;
    store: ArtifactStore;
    backend: BackendInfo;
    budgets: Budgets;
  };
  let engine: InferenceEngine;
  const hooks = <P>(jobId: string, seen: P[] = [], signal = new AbortController().signal): JobHooks<P> => ({
    jobId,
    meta: localJobMeta(),
    signal,
    onProgress: async (p: P) => {
      seen.push(p);
    },
    log: () => undefined,
  });

  before(async () => {
    backend = await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-runners-'));
    const store = new ArtifactStore(root);
    deps = {
      registry: new ModelRegistry(store),
      datasets: new DatasetStore(store),
      store,
      backend,
      budgets: loadConfig({}),
    };
    engine = new InferenceEngine({ registry: deps.registry, cacheSize: 2 });
  });
  after(async () => {
    await engine.close();
    await rm(root, { recursive: true, force: true });
  });

  const request = trainRequestSchema.parse({
    model: {
      name: 'iris',
      layers: [
        { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
    },
    dataset: { builtin: 'iris' },
    fit: { epochs: 40, batchSize: 16, learningRate: 0.02, validationSplit: 0 },
  });

  it('train, compress and infer leave no tensors behind', async () => {
    const baseline = tf.memory().numTensors;
    const progress: TrainProgress[] = [];
    const trained = await runTraining(request, deps, hooks('train-a', progress));
    assert.equal(tf.memory().numTensors, baseline, 'after training');
    assert.ok(progress.some((p) => p.stage === 'training') && progress.at(-1)?.stage === 'saving');
    const compressed = await compressJob(
      { source: trained.model, quantize: { dtype: 'uint8' } },
      deps,
      hooks('compress-a'),
    );
    assert.equal(tf.memory().numTensors, baseline, 'after compression');
    const seen: InferProgress[] = [];
    const inputs = new JobInputStore(deps.store);
    const stored = await inputs.save('infer-a', [[5.1, 3.5, 1.4, 0.2]]);
    const inferred = await inferJob(
      { model: compressed.model, input: { stored }, batchSize: 1024 },
      { ...deps, engine, inputs },
      hooks('infer-a', seen),
    );
    assert.equal(inferred.rows, 1);
    await assert.rejects(
      inputs.load('infer-a', stored),
      /gone/,
      'the inline input is removed once the output is written',
    );
    assert.equal(seen.at(-1)?.percent, 100);
    assert.equal(tf.memory().numTensors, baseline, 'after inference');
  });

  it('returns the version it already registered when a job is run again (a retry after a crash)', async () => {
    const first = await runTraining(request, deps, hooks('train-b'));
    const again = await runTraining(request, deps, hooks('train-b'));
    assert.deepEqual(again.model, first.model);
    assert.equal((await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === 'train-b').length, 1);
    const compressed = await compressJob(
      { source: first.model, quantize: { dtype: 'uint8' } },
      deps,
      hooks('compress-b'),
    );
    const recompressed = await compressJob(
      { source: first.model, quantize: { dtype: 'uint8' } },
      deps,
      hooks('compress-b'),
    );
    assert.deepEqual(recompressed, compressed);
  });

  it('refuses a model over the parameter budget before building it, and registers nothing', async () => {
    const tight = { ...deps, budgets: { ...deps.budgets, MAX_MODEL_PARAMS: 50 } };
    await assert.rejects(runTraining(request, tight, hooks('train-c')), (err: unknown) => {
      assert.ok(err instanceof TooLargeError);
      assert.match(err.message, /model\.layers: 131 parameters exceed the limit of 50 \(MAX_MODEL_PARAMS\)/);
      return true;
    });
    assert.equal((await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === 'train-c').length, 0);
  });

  it('stops in the loading stage when the job is cancelled before its model is built', async () => {
    const controller = new AbortController();
    const seen: TrainProgress[] = [];
    const stopping = hooks('train-d', seen, controller.signal);
    const running = runTraining(request, deps, {
      ...stopping,
      onProgress: async (p) => {
        seen.push(p);
        controller.abort();
      },
    });
    await assert.rejects(running, CancelledError);
    assert.deepEqual(
      seen.map((p) => p.stage),
      ['loading'],
    );
    assert.equal((await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === 'train-d').length, 0);
  });

  it('ends an attempt whose signal aborted for another reason than a cancel (a lost lock) with that reason, not as cancelled', async () => {
    const controller = new AbortController();
    const lockLost = new Error('lost the lock of job train-e');
    const stopping = hooks<TrainProgress>('train-e', [], controller.signal);
    const onProgress = async (p: TrainProgress) => {
      if (p.stage === 'training') controller.abort(lockLost);
    };
    const err: unknown = await runTraining(request, deps, { ...stopping, onProgress }).then(
      () => assert.fail('the attempt went on after its signal aborted'),
      (e: unknown) => e,
    );
    assert.equal(err, lockLost);
    assert.ok(!(err instanceof CancelledError));
  });
});
