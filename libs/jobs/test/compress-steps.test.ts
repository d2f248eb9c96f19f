import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  CancelledError,
  compressRequestSchema,
  FieldError,
  GoneError,
  localJobMeta,
  trainRequestSchema,
  type CompressProgress,
  type JobHooks,
  type ModelRef,
} from '@tq/contracts';
import { compressJob, runTraining, type CompressDeps } from '@tq/jobs';
import { loadConfig } from '@tq/config';
import {
  buildModel,
  GateRefusedError,
  initBackend,
  loadModelVersion,
  magnitudeMasks,
  polynomialSparsity,
  prunableKernels,
  saveModelVersion,
  type BackendInfo,
} from '@tq/ml';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';

function hooks<P = CompressProgress>(
  jobId: string,
  seen: P[] = [],
  signal = new AbortController().signal,
): JobHooks<P> {
  return {
    jobId,
    meta: localJobMeta(),
    signal,
    onProgress: async (p) => {
      seen.push(p);
    },
    log: () => undefined,
  };
}

/** Zeros per prunable kernel of a registered version, loaded with stock tf.loadLayersModel. */
async function kernelZeros(registry: ModelRegistry, ref: ModelRef): Promise<Array<{ zeros: number; size: number }>> {
  const { model } = await loadModelVersion(registry, ref);
  try {
    return prunableKernels(model).map((k) => {
      const w = k.read().dataSync();
      return { zeros: w.filter((v) => v === 0).length, size: w.length };
    });
  } finally {
    model.dispose();
  }
}

describe('magnitude masks (property: every pruned |w| ≤ every kept |w| of its group, exactly floor(s·n) pruned)', () => {
  before(() => initBackend());
  const model = buildModel(
    [
      { type: 'dense', units: 23, activation: 'relu', inputShape: [7] },
      { type: 'dense', units: 11, activation: 'relu' },
      { type: 'dense', units: 3, activation: 'softmax' },
    ],
    { seed: 5, task: 'classification' },
  );
  after(() => model.dispose());
  for (const scope of ['layer', 'global'] as const)
    for (const sparsity of [0, 0.1, 0.5, 0.77, 0.99])
      it(`${scope} scope, sparsity ${sparsity}`, () => {
        const masks = magnitudeMasks(model, { sparsity, scope });
        const groups = scope === 'layer' ? masks.map((m) => [m]) : [masks];
        for (const group of groups) {
          const pruned: number[] = [];
          const kept: number[] = [];
          for (const { variable, mask } of group) {
            const w = variable.read().dataSync();
            mask.forEach((m, i) => (m === 0 ? pruned : kept).push(Math.abs(w[i]!)));
          }
          assert.equal(pruned.length, Math.floor(sparsity * (pruned.length + kept.length)));
          if (pruned.length > 0 && kept.length > 0) assert.ok(Math.max(...pruned) <= Math.min(...kept));
        }
      });
  it('the polynomial schedule rises monotonically from 0 to the target', () => {
    let last = -1;
    for (let step = 0; step <= 40; step++) {
      const s = polynomialSparsity(0.9, step, 40);
      assert.ok(s >= last && s <= 0.9);
      last = s;
    }
    assert.equal(polynomialSparsity(0.9, 0, 40), 0);
    assert.equal(polynomialSparsity(0.9, 40, 40), 0.9);
  });
});

describe('compress request contract', () => {
  const issue = (body: unknown): string[] => {
    const parsed = compressRequestSchema.safeParse(body);
    return parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'));
  };
  const source = { name: 'm', version: 1 };
  it('keeps the older {quantize} form and fills prune defaults', () => {
    assert.deepEqual(issue({ source, quantize: { dtype: 'uint8' } }), []);
    const req = compressRequestSchema.parse({ source, steps: [{ prune: { sparsity: 0.5 } }] });
    assert.deepEqual(req.steps, [
      {
        prune: {
          sparsity: 0.5,
          scope: 'layer',
          schedule: 'oneShot',
          fineTuneEpochs: 0,
          learningRate: 0.0005,
          batchSize: 128,
          structured: false,
        },
      },
    ]);
  });
  it('names the field of each bad input', () => {
    assert.deepEqual(issue({ source, steps: [] }), ['steps']);
    assert.deepEqual(issue({ source, steps: [{ prune: { sparsity: 1 } }] }), ['steps.0.prune.sparsity']);
    assert.deepEqual(issue({ source, steps: [{ prune: { sparsity: 0.2 } }, { prune: { sparsity: 0.3 } }] }), [
      'steps.1',
    ]);
    assert.deepEqual(issue({ source, steps: [{ quantize: { dtype: 'uint8' } }, { prune: { sparsity: 0.3 } }] }), [
      'steps.0',
    ]);
    assert.deepEqual(issue({ source, steps: [{ prune: { sparsity: 0.3 } }], gate: {} }), ['gate']);
    assert.deepEqual(issue({ source, steps: [{ prune: { sparsity: 0.3, structured: true, scope: 'global' } }] }), [
      'steps.0.prune.scope',
    ]);
    assert.deepEqual(
      issue({
        source,
        steps: [{ prune: { sparsity: 0.3, structured: true, schedule: 'polynomial', fineTuneEpochs: 1 } }],
      }),
      ['steps.0.prune.schedule'],
    );
  });
});

describe('compress steps (iris MLP, held-out = the train job’s validation split)', () => {
  let root: string;
  let backend: BackendInfo;
  let deps: CompressDeps;
  let source: ModelRef;
  let sourceValAccuracy: number;
  const madeBy = async (jobId: string) =>
    (await deps.registry.versions('iris')).filter((v) => v.lineage.jobId === jobId);

  before(async () => {
    backend = await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-compress-steps-'));
    const store = new ArtifactStore(root);
    const registry = new ModelRegistry(store);
    deps = { registry, datasets: new DatasetStore(store), store, backend, speed: { batchPasses: 1, latencyRuns: 3 } };
    const trained = await runTraining(
      trainRequestSchema.parse({
        model: {
          name: 'iris',
          layers: [
            { type: 'dense', units: 32, activation: 'relu', inputShape: [4] },
            { type: 'dense', units: 3, activation: 'softmax' },
          ],
        },
        dataset: { builtin: 'iris' },
        fit: { epochs: 60, batchSize: 16, learningRate: 0.02, validationSplit: 0.2, seed: 3 },
      }),
      { ...deps, store, budgets: loadConfig({}) },
      hooks('train-src'),
    );
    source = trained.model;
    sourceValAccuracy = trained.metrics.valAccuracy!;
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('prune 50% + uint8: evaluated side by side on the source’s held-out rows, lineage names the steps', async () => {
    const before = tf.memory().numTensors;
    const seen: CompressProgress[] = [];
    const result = await compressJob(
      {
        source,
        steps: compressRequestSchema.parse({
          source,
          steps: [{ prune: { sparsity: 0.5 } }, { quantize: { dtype: 'uint8' } }],
        }).steps!,
      },
      deps,
      hooks('c-prune-q', seen),
    );
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    const ev = result.evaluation!;
    assert.ok(ev, 'the result carries its evaluation');
    // The same 30 held-out rows the train job validated on: the source's accuracy is its valAccuracy.
    assert.equal(ev.rows, 30);
    assert.deepEqual(ev.split, { validationSplit: 0.2, seed: 3, recorded: true });
    assert.ok(
      Math.abs(ev.source.accuracy! - sourceValAccuracy) < 1e-6,
      `${ev.source.accuracy} vs ${sourceValAccuracy}`,
    );
    assert.equal(ev.source.parameters, 4 * 32 + 32 + 32 * 3 + 3);
    assert.equal(ev.result.parameters, ev.source.parameters);
    assert.ok(ev.result.nonZeroParameters <= ev.source.parameters - (64 + 48));
    assert.equal(ev.source.flopsPerRow, 2 * (4 * 32 + 32 * 3));
    assert.ok(ev.result.bytesRaw < ev.source.bytesRaw && ev.result.bytesGzip < ev.source.bytesGzip);
    assert.equal(ev.delta.accuracy, ev.result.accuracy! - ev.source.accuracy!);
    assert.equal(ev.result.artifact, 'model.int8.onnx');
    assert.ok(ev.result.rowsPerSec > 0 && ev.result.p50LatencyMs > 0);
    // Per layer, exactly half of each kernel is zero as stock tfjs loads the stored (uint8) weights.
    for (const k of await kernelZeros(deps.registry, result.model))
      assert.ok(k.zeros >= Math.floor(k.size / 2), JSON.stringify(k));
    const meta = await deps.registry.getVersion(result.model);
    assert.deepEqual(meta.evaluation, ev);
    assert.equal(meta.weightDtype, 'uint8');
    assert.deepEqual((meta.lineage.compression as { steps: unknown }).steps, [
      {
        prune: {
          sparsity: 0.5,
          scope: 'layer',
          schedule: 'oneShot',
          fineTuneEpochs: 0,
          learningRate: 0.0005,
          batchSize: 128,
          structured: false,
        },
      },
      { quantize: { dtype: 'uint8' } },
    ]);
    assert.deepEqual(meta.lineage.training, { validationSplit: 0.2, seed: 3 });
    assert.ok(Object.hasOwn(meta.artifacts, 'model.onnx') && Object.hasOwn(meta.artifacts, 'model.int8.onnx'));
    assert.deepEqual(
      seen.filter((p) => p.stage === 'compressing').map((p) => p.kind),
      ['prune', 'quantize'],
    );
    // A retry of the same job returns the version it registered, figures included.
    assert.deepEqual(
      await compressJob({ source, steps: [{ quantize: { dtype: 'uint8' } }] }, deps, hooks('c-prune-q')),
      result,
    );
  });

  it('gradual global pruning with fine-tuning holds the masks through every optimizer step', async () => {
    const seen: CompressProgress[] = [];
    const req = compressRequestSchema.parse({
      source,
      steps: [{ prune: { sparsity: 0.8, scope: 'global', schedule: 'polynomial', fineTuneEpochs: 3, batchSize: 16 } }],
    });
    const result = await compressJob(req, deps, hooks('c-gradual', seen));
    const zeros = await kernelZeros(deps.registry, result.model);
    const total = zeros.reduce((n, k) => n + k.size, 0);
    assert.ok(zeros.reduce((n, k) => n + k.zeros, 0) >= Math.floor(0.8 * total));
    assert.deepEqual([...new Set(seen.flatMap((p) => (p.epoch !== undefined ? [p.epoch] : [])))], [1, 2, 3]);
    const meta = await deps.registry.getVersion(result.model);
    assert.equal((meta.lineage.compression as { fineTune: { epochs: number } }).fineTune.epochs, 3);
    assert.equal(meta.weightDtype, 'float32');
    assert.ok(result.evaluation!.result.bytesGzip < result.evaluation!.source.bytesGzip);
  });

  it('one-shot pruning with fine-tuning keeps every pruned weight at zero (masks re-applied after each step)', async () => {
    const req = compressRequestSchema.parse({
      source,
      steps: [{ prune: { sparsity: 0.5, fineTuneEpochs: 2, batchSize: 8, learningRate: 0.01 } }],
    });
    const result = await compressJob(req, deps, hooks('c-oneshot-ft'));
    for (const k of await kernelZeros(deps.registry, result.model))
      assert.ok(k.zeros >= Math.floor(k.size / 2), JSON.stringify(k));
    const { model } = await loadModelVersion(deps.registry, source);
    const src = prunableKernels(model).map((k) => k.read().dataSync());
    model.dispose();
    // Fine-tuning moved the weights it kept: the kept ones are not the source's any more.
    const { model: tuned } = await loadModelVersion(deps.registry, result.model);
    const out = prunableKernels(tuned).map((k) => k.read().dataSync());
    tuned.dispose();
    assert.ok(out.some((w, i) => w.some((v, j) => v !== 0 && v !== src[i]![j])));
  });

  it('structured 50% removes half the hidden units: fewer parameters and FLOPs, an ordinary model that loads and exports', async () => {
    const req = compressRequestSchema.parse({
      source,
      steps: [{ prune: { sparsity: 0.5, structured: true, fineTuneEpochs: 2, batchSize: 8 } }],
    });
    const result = await compressJob(req, deps, hooks('c-structured'));
    const ev = result.evaluation!;
    assert.equal(ev.result.parameters, 4 * 16 + 16 + 16 * 3 + 3);
    assert.equal(ev.result.flopsPerRow, 2 * (4 * 16 + 16 * 3));
    assert.equal(ev.result.artifact, 'model.onnx');
    const meta = await deps.registry.getVersion(result.model);
    assert.deepEqual(
      meta.layers?.map((l) => (l.type === 'dense' ? l.units : 0)),
      [16, 3],
    );
    assert.deepEqual(Object.values((meta.lineage.compression as { kept: object }).kept), [[16, 32]]);
    const { model } = await loadModelVersion(deps.registry, result.model);
    const out = model.predict(tf.zeros([2, 4])) as tf.Tensor;
    assert.deepEqual(out.shape, [2, 3]);
    tf.dispose([out]);
    model.dispose();
  });

  it('distill to a half-width student: trained on the teacher’s softened outputs, resumed from its checkpoint after a cancel', async () => {
    const req = compressRequestSchema.parse({
      source,
      steps: [{ distill: { student: { width: 0.5 }, epochs: 6, batchSize: 8, learningRate: 0.01, temperature: 2 } }],
    });
    // First attempt: cancelled once epoch 2 is checkpointed.
    const controller = new AbortController();
    await assert.rejects(
      compressJob(req, deps, {
        ...hooks('c-distill', [], controller.signal),
        onProgress: async (p) => {
          if (p.kind === 'distill' && p.epoch === 2 && p.percent >= (100 * 2) / 6 - 1e-9) controller.abort();
        },
      }),
      CancelledError,
    );
    assert.deepEqual(await madeBy('c-distill'), []);
    const result = await compressJob(req, deps, hooks('c-distill'));
    const meta = await deps.registry.getVersion(result.model);
    assert.equal(meta.lineage.kind, 'distilled');
    const distilled = (meta.lineage.compression as { distilled: { epochs: number; resumedFromEpoch?: number } })
      .distilled;
    assert.equal(distilled.epochs, 6);
    assert.equal(distilled.resumedFromEpoch, 2);
    assert.deepEqual(
      meta.layers?.map((l) => (l.type === 'dense' ? l.units : 0)),
      [16, 3],
    );
    const ev = result.evaluation!;
    assert.equal(ev.result.parameters, 4 * 16 + 16 + 16 * 3 + 3);
    assert.ok(ev.result.accuracy! > 0.6, `the student learned: ${ev.result.accuracy}`);
  });

  it('a student whose input differs from the teacher’s is refused naming the layer field', async () => {
    const req = compressRequestSchema.parse({
      source,
      steps: [
        {
          distill: {
            student: {
              layers: [
                { type: 'dense', units: 8, activation: 'relu', inputShape: [5] },
                { type: 'dense', units: 3, activation: 'softmax' },
              ],
            },
          },
        },
      ],
    });
    await assert.rejects(
      compressJob(req, deps, hooks('c-bad-student')),
      (err: unknown) => err instanceof FieldError && err.field === 'steps.0.distill.student.layers.0.inputShape',
    );
  });

  it('a gate that refuses registers nothing and fails with the figures', async () => {
    const req = compressRequestSchema.parse({
      source,
      steps: [{ prune: { sparsity: 0.99, scope: 'global' } }],
      gate: { maxAccuracyDrop: 0.01 },
    });
    await assert.rejects(compressJob(req, deps, hooks('c-refused')), (err: unknown) => {
      assert.ok(err instanceof GateRefusedError);
      assert.match(err.message, /accuracy dropped .* over maxAccuracyDrop 0\.01 \(nothing registered\); figures: \{/);
      assert.ok(err.evaluation.result.nonZeroParameters < err.evaluation.source.nonZeroParameters);
      return true;
    });
    assert.deepEqual(await madeBy('c-refused'), []);
  });

  it('a gate on a metric the task has not, and steps on a source without held-out rows, fail naming the field', async () => {
    await assert.rejects(
      compressJob(
        compressRequestSchema.parse({ source, steps: [{ prune: { sparsity: 0.5 } }], gate: { maxRmseIncrease: 1 } }),
        deps,
        hooks('c-bad-gate'),
      ),
      (err: unknown) => err instanceof FieldError && err.field === 'gate.maxRmseIncrease',
    );
    const model = buildModel([{ type: 'dense', units: 3, activation: 'softmax', inputShape: [4] }], {
      seed: 1,
      task: 'classification',
    });
    const nosplit = await saveModelVersion(deps.registry, 'iris', model, {
      inputShape: [4],
      featureCount: 4,
      classes: ['a', 'b', 'c'],
      lineage: { kind: 'trained', dataset: { builtin: 'iris' }, training: { validationSplit: 0, seed: 1 } },
      weightDtype: 'float32',
    });
    const gone = await saveModelVersion(deps.registry, 'iris', model, {
      inputShape: [4],
      featureCount: 4,
      classes: ['a', 'b', 'c'],
      lineage: {
        kind: 'trained',
        dataset: { id: '33333333-3333-4333-8333-333333333333' },
        training: { validationSplit: 0.2, seed: 1 },
      },
      weightDtype: 'float32',
    });
    model.dispose();
    const prune = (ref: ModelRef) =>
      compressRequestSchema.parse({ source: ref, steps: [{ prune: { sparsity: 0.5 } }] });
    await assert.rejects(
      compressJob(prune(nosplit), deps, hooks('c-nosplit')),
      (err: unknown) => err instanceof FieldError && err.field === 'source' && /held-out/.test(err.message),
    );
    await assert.rejects(
      compressJob(prune(gone), deps, hooks('c-gone')),
      (err: unknown) => err instanceof GoneError && err.field === 'source' && /33333333.*is gone/.test(err.message),
    );
    // The older form still compresses the source without held-out rows, without figures.
    const old = await compressJob({ source: nosplit, quantize: { dtype: 'float16' } }, deps, hooks('c-old'));
    assert.equal(old.evaluation, undefined);
  });

  it('a cancel during fine-tuning stops between batches and registers nothing', async () => {
    const controller = new AbortController();
    const req = compressRequestSchema.parse({
      source,
      steps: [{ prune: { sparsity: 0.5, fineTuneEpochs: 50, batchSize: 4 } }],
    });
    const before = tf.memory().numTensors;
    await assert.rejects(
      compressJob(req, deps, {
        ...hooks('c-cancel', [], controller.signal),
        onProgress: async (p) => {
          if (p.epoch !== undefined) controller.abort();
        },
      }),
      CancelledError,
    );
    assert.equal(tf.memory().numTensors, before, 'no tensors left behind');
    assert.deepEqual(await madeBy('c-cancel'), []);
  });
});
