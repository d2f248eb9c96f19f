import assert from 'node:assert/strict';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
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
import { compressJob, inferCleanup, inferJob, runTraining } from '@tq/jobs';
import { loadConfig } from '@tq/config';
import { InferenceEngine, initBackend, toPredictions, type BackendInfo, type Budgets } from '@tq/ml';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';
import { localPath, readOutput } from './local-store';

/** More rows than one chunk of the infer job (8192), so that it stops between two chunks. */
const ROWS = 10_000;
const irisRows = Array.from({ length: ROWS }, (_, i) => [
  4 + (i % 40) / 10,
  2 + (i % 23) / 10,
  1 + (i % 59) / 10,
  (i % 25) / 10,
]);

/** Targets of this process's open file descriptors under `dir` (a leaked write stream shows here). */
async function openFilesUnder(dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  // The fd readdir itself used is gone by now: its readlink fails and is left out.
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((t) => t.startsWith(dir));
}

/** An engine whose second predict fails, as a model error half-way through a job would. */
class FailingEngine extends InferenceEngine {
  private calls = 0;
  override async predict(...args: Parameters<InferenceEngine['predict']>): ReturnType<InferenceEngine['predict']> {
    if (++this.calls === 2) throw new Error('predict failed');
    return super.predict(...args);
  }
}

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

  it('refuses more classes than MAX_CLASSES before building the model, and registers nothing', async () => {
    const tight = { ...deps, budgets: { ...deps.budgets, MAX_CLASSES: 2 } };
    await assert.rejects(runTraining(request, tight, hooks('train-classes')), (err: unknown) => {
      assert.ok(err instanceof TooLargeError);
      assert.match(err.message, /dataset: 3 classes exceed the limit of 2 \(MAX_CLASSES\)/);
      return true;
    });
    assert.equal((await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === 'train-classes').length, 0);
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

  describe('infer output', () => {
    let model: { name: string; version: number };
    let outputs: string;
    let inputs: JobInputStore;
    before(async () => {
      model = (await runTraining(request, deps, hooks('train-e'))).model;
      outputs = localPath(deps.store, deps.store.outputsPrefix());
      inputs = new JobInputStore(deps.store);
    });
    // Temp files (a write in progress or left by a failure) start with a dot: any of them counts.
    const filesOf = async (jobId: string) =>
      (await readdir(outputs).catch(() => [])).filter((f) => f.startsWith(jobId) || f.startsWith('.'));

    it('writes one line per row in input order, and only the finished file', async () => {
      const stored = await inputs.save('infer-e', irisRows);
      const seen: InferProgress[] = [];
      const result = await inferJob(
        { model, input: { stored }, batchSize: 1024 },
        { ...deps, engine, inputs },
        hooks('infer-e', seen),
      );
      assert.equal(result.rows, ROWS);
      const direct = await engine.predict(model, Float32Array.from(irisRows.flat()), ROWS);
      const expected = toPredictions(direct.scores, direct.outputSize, (await deps.registry.getVersion(model)).classes);
      const lines = (await readOutput(deps.store, 'infer-e')).split('\n');
      assert.equal(lines.pop(), '', 'the file ends with a newline');
      assert.equal(lines.length, ROWS);
      assert.deepEqual(
        lines.map((l) => JSON.parse(l) as unknown),
        expected.map((p) => JSON.parse(JSON.stringify(p)) as unknown),
      );
      assert.deepEqual(await filesOf('infer-e'), ['infer-e.jsonl']);
      assert.deepEqual(
        seen.filter((p) => p.stage === 'predicting').map((p) => p.rows),
        [8192, ROWS],
      );
    });

    it('a predict failing mid-way leaves no partial file, no open file and the input for a retry', async () => {
      const failing = new FailingEngine({ registry: deps.registry, cacheSize: 1 });
      const stored = await inputs.save('infer-f', irisRows);
      try {
        await assert.rejects(
          inferJob(
            { model, input: { stored }, batchSize: 1024 },
            { ...deps, engine: failing, inputs },
            hooks('infer-f'),
          ),
          /predict failed/,
        );
      } finally {
        await failing.close();
      }
      assert.deepEqual(await filesOf('infer-f'), []);
      assert.deepEqual(await openFilesUnder(outputs), []);
      assert.equal((await inputs.load('infer-f', stored)).rows, ROWS, 'a retry still finds its input');
      // Where the job fails for good, the worker cleans up; twice is harmless.
      await inferCleanup({ input: { stored } }, 'infer-f', inputs);
      await inferCleanup({ input: { stored } }, 'infer-f', inputs);
      await assert.rejects(inputs.load('infer-f', stored), /gone/);
    });

    it('a cancel between chunks leaves no partial file and no open file', async () => {
      const stored = await inputs.save('infer-g', irisRows);
      const controller = new AbortController();
      const stopping = hooks<InferProgress>('infer-g', [], controller.signal);
      const running = inferJob(
        { model, input: { stored }, batchSize: 1024 },
        { ...deps, engine, inputs },
        {
          ...stopping,
          onProgress: async (p) => {
            if (p.stage === 'predicting') controller.abort();
          },
        },
      );
      await assert.rejects(running, CancelledError);
      assert.deepEqual(await filesOf('infer-g'), []);
      assert.deepEqual(await openFilesUnder(outputs), []);
    });
  });

  describe('compress and cancel', () => {
    let source: { name: string; version: number };
    before(async () => {
      source = (await runTraining(request, deps, hooks('train-h'))).model;
    });
    const madeBy = async (jobId: string) =>
      (await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === jobId);

    it('a cancel before the new version is registered registers nothing', async () => {
      const controller = new AbortController();
      const job = hooks('compress-h', [], controller.signal);
      const running = compressJob({ source, quantize: { dtype: 'uint8' } }, deps, {
        ...job,
        onProgress: async () => controller.abort(),
      });
      await assert.rejects(running, CancelledError);
      assert.deepEqual(await madeBy('compress-h'), []);
    });

    it('a cancel once the new version is registered still finishes it, ONNX graph included', async () => {
      const controller = new AbortController();
      const job = hooks('compress-i', [], controller.signal);
      const result = await compressJob({ source, quantize: { dtype: 'uint8' } }, deps, {
        ...job,
        onProgress: async (p) => {
          if (p.stage === 'saving') controller.abort();
        },
      });
      const [made] = await madeBy('compress-i');
      assert.deepEqual(made && { name: made.name, version: made.version }, result.model);
      assert.ok(made && Object.hasOwn(made.artifacts, 'model.onnx'), 'the version has its model.onnx');
    });
  });
});
