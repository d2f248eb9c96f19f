import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { fitSchema, trainProgressSchema, type FitSpec, type LayerSpec, type TrainProgress } from '@tq/contracts';
import { ArtifactStore } from '@tq/storage';
import {
  buildModel,
  evaluate,
  storedCheckpoint,
  initBackend,
  loadBuiltinDataset,
  trainModel,
  TrainingCancelledError,
  type CheckpointStore,
  type TrainCheckpoint,
} from '@tq/ml';

const irisLayers: LayerSpec[] = [
  { type: 'batchNormalization', inputShape: [4] },
  { type: 'dense', units: 12, activation: 'relu' },
  { type: 'dense', units: 3, activation: 'softmax' },
];
const fit = (over: Partial<FitSpec>): FitSpec =>
  fitSchema.parse({ batchSize: 16, optimizer: 'adam', learningRate: 0.02, validationSplit: 0.2, seed: 7, ...over });
const weightsOf = (m: tf.LayersModel): number[][] => m.getWeights().map((w) => Array.from(w.dataSync()));

function memoryCheckpoint(): CheckpointStore & { saved: TrainCheckpoint[] } {
  const saved: TrainCheckpoint[] = [];
  return {
    saved,
    load: async () => saved.at(-1),
    save: async (c) => {
      saved.push(c);
    },
  };
}

describe('trainModel', () => {
  let root: string;
  before(async () => {
    await initBackend();
    root = await mkdtemp(join(tmpdir(), 'tq-train-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('learns iris to >= 0.9 accuracy, reports progress, yields every batch and leaks no tensors', async () => {
    const data = loadBuiltinDataset('iris');
    const model = buildModel(irisLayers, { seed: 1 });
    const spec = fit({ epochs: 30 });
    const reports: TrainProgress[] = [];
    let ticks = 0;
    let ticking = true;
    const tick = (): void => {
      ticks++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const base = tf.memory().numTensors;
    const out = await trainModel({
      model,
      data,
      fit: spec,
      onProgress: (p) => {
        reports.push(p);
      },
    });
    ticking = false;
    assert.equal(tf.memory().numTensors, base);

    const batches = Math.ceil(120 / 16) * 30;
    assert.ok(ticks >= batches, `the event loop turned ${ticks} times in ${batches} batches`);
    assert.equal(out.epochs, 30);
    assert.equal(out.history.length, 30);
    assert.ok(out.metrics.accuracy! >= 0.9, `train accuracy ${out.metrics.accuracy}`);
    assert.ok(out.metrics.valAccuracy! >= 0.9, `validation accuracy ${out.metrics.valAccuracy}`);
    assert.ok(out.history[29]!.loss! < out.history[0]!.loss!);
    assert.ok(out.samplesPerSec > 0);
    assert.equal(out.resumedFromEpoch, undefined);

    const whole = await evaluate(model, data, 64);
    assert.ok(whole.accuracy >= 0.9, `accuracy on all 150 rows ${whole.accuracy}`);
    assert.equal(tf.memory().numTensors, base);

    for (const r of reports) trainProgressSchema.parse(r);
    const epochEnds = reports.filter((r) => r.step! % Math.ceil(120 / 16) === 0);
    assert.equal(epochEnds.length, 30);
    assert.deepEqual(
      reports.map((r) => r.percent),
      [...reports.map((r) => r.percent)].sort((a, b) => a - b),
    );
    assert.equal(reports.at(-1)!.percent, 100);
    model.dispose();
  });

  it('a run stopped after epoch 2 and resumed in a new model ends with the weights of an uninterrupted run', async () => {
    const data = loadBuiltinDataset('iris');
    const spec = fit({ epochs: 5 });

    const straight = buildModel(irisLayers, { seed: 3 });
    const whole = await trainModel({ model: straight, data, fit: spec });

    const store = storedCheckpoint(new ArtifactStore(root), 'job-42');
    let saves = 0;
    const counting: CheckpointStore = {
      load: () => store.load(),
      save: async (c) => {
        await store.save(c);
        saves++;
      },
    };
    const first = buildModel(irisLayers, { seed: 3 });
    await assert.rejects(
      trainModel({ model: first, data, fit: spec, checkpoint: counting, shouldStop: () => saves === 2 }),
      TrainingCancelledError,
    );
    assert.deepEqual(await readdir(join(root, 'checkpoints', 'job-42')), ['checkpoint.bin']);

    const base = tf.memory().numTensors;
    const resumed = buildModel(irisLayers, { seed: 99 }); // other start weights: the checkpoint must replace them
    const baseWithModel = tf.memory().numTensors;
    const out = await trainModel({ model: resumed, data, fit: spec, checkpoint: store });
    assert.equal(tf.memory().numTensors, baseWithModel);
    assert.ok(baseWithModel > base);
    assert.equal(out.resumedFromEpoch, 2);
    assert.deepEqual(out.history, whole.history);
    assert.deepEqual(weightsOf(resumed), weightsOf(straight));
    assert.deepEqual(out.metrics, whole.metrics);

    // A checkpoint of another configuration is not resumed.
    const other = buildModel(irisLayers, { seed: 3 });
    const fresh = await trainModel({ model: other, data, fit: { ...spec, learningRate: 0.01 }, checkpoint: store });
    assert.equal(fresh.resumedFromEpoch, undefined);
    await store.clear!();
    assert.equal(await store.load(), undefined);
    [straight, first, resumed, other].forEach((m) => m.dispose());
  });

  for (const optimizer of ['sgd', 'momentum', 'rmsprop', 'adagrad'] as const) {
    it(`${optimizer}: resuming from an in-memory checkpoint matches an uninterrupted run`, async () => {
      const data = loadBuiltinDataset('iris');
      const spec = fit({ epochs: 3, optimizer, learningRate: 0.01 });
      const straight = buildModel(irisLayers, { seed: 4 });
      await trainModel({ model: straight, data, fit: spec });
      const ckpt = memoryCheckpoint();
      const first = buildModel(irisLayers, { seed: 4 });
      await assert.rejects(
        trainModel({ model: first, data, fit: spec, checkpoint: ckpt, shouldStop: () => ckpt.saved.length === 1 }),
        TrainingCancelledError,
      );
      const resumed = buildModel(irisLayers, { seed: 5 });
      const out = await trainModel({ model: resumed, data, fit: spec, checkpoint: ckpt });
      assert.equal(out.resumedFromEpoch, 1);
      assert.deepEqual(weightsOf(resumed), weightsOf(straight));
      [straight, first, resumed].forEach((m) => m.dispose());
    });
  }

  it('stops at the first batch after shouldStop answers true, and frees its tensors', async () => {
    const data = loadBuiltinDataset('mnist');
    const model = buildModel(
      [
        { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
      { seed: 1 },
    );
    const base = tf.memory().numTensors;
    let asked = 0;
    const err = await trainModel({
      model,
      data,
      fit: fit({ epochs: 5, batchSize: 64 }),
      shouldStop: async () => ++asked > 3,
    }).then(
      () => assert.fail('training was not cancelled'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof TrainingCancelledError);
    assert.equal(err.step, 3); // three batches ran, the fourth was never started
    assert.equal(err.epoch, 1);
    assert.equal(asked, 4);
    assert.equal(tf.memory().numTensors, base);
    model.dispose();
  });

  it('names the field when the model does not fit the data or the split leaves nothing to train on', async () => {
    const data = loadBuiltinDataset('iris');
    const wrong = buildModel([{ type: 'dense', units: 3, activation: 'softmax', inputShape: [5] }], { seed: 1 });
    await assert.rejects(trainModel({ model: wrong, data, fit: fit({ epochs: 1 }) }), {
      field: 'model.layers.0.inputShape',
    });
    const right = buildModel([{ type: 'dense', units: 3, activation: 'softmax', inputShape: [4] }], { seed: 1 });
    await assert.rejects(
      trainModel({
        model: right,
        data: { ...data, rows: 1, x: data.x.subarray(0, 4), y: data.y.subarray(0, 1) },
        fit: fit({ epochs: 1, validationSplit: 0.5 }),
      }),
      { field: 'fit.validationSplit' },
    );
    [wrong, right].forEach((m) => m.dispose());
  });
});
