import * as tf from '@tensorflow/tfjs';
import type { FitSpec, Metrics, TrainProgress } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import { gatherBatch, labelDtype, sliceRows, trainRowCount } from '../data/batches';
import { mixSeed, seededPermutation } from '../data/prng';
import { checkModelFitsData, modelInputShape } from '../model/fit-data';
import { ModelSpecError } from '../model/model-spec-error';
import { captureState, restoreState, type CheckpointStore } from './checkpoint';
import { TrainingCancelledError } from './errors';
import { EarlyStopping, checkMonitor } from './early-stopping';
import { evaluate, regressionMetrics } from './evaluate';
import { epochMetrics, validationEntry } from './metrics';
import { applyGradients, computeGradients, createOptimizer } from './gradients';
import { SparsityHold } from '../compress/sparsity-hold';
import { lossSpecOf, validationLoss } from './losses';

export interface TrainOptions {
  model: tf.LayersModel;
  data: TabularData;
  fit: FitSpec;
  onProgress?: (p: TrainProgress) => void | Promise<void>;
  /** Asked before every batch; true stops the run with TrainingCancelledError. */
  shouldStop?: () => boolean | Promise<boolean>;
  /** Saved after every epoch, loaded once at the start: a retried job resumes where the last one got to. */
  checkpoint?: CheckpointStore;
  /** Rows per forward pass when evaluating (default max(batchSize, 1024)). */
  evalBatchSize?: number;
  /** Field named when the model does not fit the data: "model.layers" (default) or "model.from" for a fine-tuned version. */
  modelField?: string;
  /**
   * Called after every optimizer step (and fit.prune's masks) with the 1-based step number and the
   * run's step count.
   */
  afterStep?: (step: number, steps: number) => void;
  /** Minimised instead of the fit's loss (distillation); training metrics and val* stay against the labels. */
  batchLoss?: (out: tf.Tensor, y: tf.Tensor, x: tf.Tensor) => tf.Scalar;
  /** The training forward pass `batchLoss` gets as `out` (distillation: logits); the model's own when absent. */
  forward?: (x: tf.Tensor) => tf.Tensor;
}

export interface TrainOutcome {
  metrics: Metrics;
  /** One entry per epoch: { epoch, loss, accuracy, valLoss?, valAccuracy? }. */
  history: Array<Record<string, number>>;
  epochs: number;
  /** Training samples per second in the batch loop (evaluation excluded), over all runs of this job. */
  samplesPerSec: number;
  resumedFromEpoch?: number;
  /** fit.earlyStopping: the epoch whose weights the model holds, and the last epoch trained. */
  bestEpoch?: number;
  stoppedEpoch?: number;
}

/** Progress is reported at most this often, plus at every epoch end. */
const PROGRESS_INTERVAL_MS = 250;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Trains a softmax classifier or a one-output regression with mini-batch gradient descent: the
 * same step (computeGradients + applyGradients) the parameter-server workers run. Keras semantics
 * where they exist: a prepared table's validation rows, else the last validationSplit of the rows
 * (before shuffling), are held out; train rows are reshuffled each epoch
 * (seeded by fit.seed and the epoch number, so a resumed run sees the same order); the epoch's
 * loss/accuracy are the means over its batches in training mode, val* are evaluated after it.
 * Yields to the event loop after every batch so BullMQ can renew its job lock.
 */
export async function trainModel(opts: TrainOptions): Promise<TrainOutcome> {
  const { model, data, fit } = opts;
  checkModelFitsData(model, data, opts.modelField);
  const inputShape = modelInputShape(model);
  const split = trainRowCount(data, fit.validationSplit);
  if (split === 0) throw new ModelSpecError('fit.validationSplit', `leaves no training rows out of ${data.rows}`);
  const train = sliceRows(data, 0, split);
  const validation = split < data.rows ? sliceRows(data, split, data.rows) : undefined;
  const evalBatch = opts.evalBatchSize ?? Math.max(fit.batchSize, 1024);
  const batchesPerEpoch = Math.ceil(train.rows / fit.batchSize);
  const loss = lossSpecOf(data, fit, split);
  const regression = data.task === 'regression';
  if (fit.earlyStopping) checkMonitor(fit.earlyStopping, data.task, validation !== undefined);
  const early = fit.earlyStopping ? new EarlyStopping(fit.earlyStopping) : undefined;
  const fingerprint = JSON.stringify({
    fit,
    task: data.task,
    rows: data.rows,
    validationRows: data.validationRows,
    features: data.featureCount,
    classes: data.classes,
    shapes: model.weights.map((w) => w.shape),
  });

  const optimizer = createOptimizer(fit);
  let sparsity: SparsityHold | undefined;
  try {
    let history: Array<Record<string, number>> = [];
    let firstEpoch = 0;
    let trainSamples = 0;
    let trainMs = 0;
    let resumedFromEpoch: number | undefined;
    const saved = await opts.checkpoint?.load();
    if (saved && saved.fingerprint === fingerprint && saved.epoch <= fit.epochs) {
      await restoreState(model, optimizer, saved);
      ({ history, trainSamples, trainMs } = saved);
      firstEpoch = resumedFromEpoch = saved.epoch;
      if (early && saved.earlyStopping) early.loadBest(saved.earlyStopping.state, saved.earlyStopping.best);
    }

    // fit.prune: masks from the weights training starts with (restored ones on a resume).
    if (fit.prune) sparsity = new SparsityHold(model, fit.prune);
    const identity = Uint32Array.from({ length: train.rows }, (_, i) => i);
    for (let epoch = firstEpoch; epoch < fit.epochs && !early?.state.stopped; epoch++) {
      const order = fit.shuffle ? seededPermutation(train.rows, mixSeed(fit.seed, epoch)) : identity;
      let lossSum = 0;
      let correct = 0;
      const errors = [0, 0];
      let seen = 0;
      let lastReport = Date.now();
      const epochStart = performance.now();
      for (let b = 0; b < batchesPerEpoch; b++) {
        if (await opts.shouldStop?.()) throw new TrainingCancelledError(epoch + 1, epoch * batchesPerEpoch + b);
        const t0 = performance.now();
        const n = Math.min(fit.batchSize, train.rows - b * fit.batchSize);
        const batch = gatherBatch(train, order, b * fit.batchSize, n);
        const x = tf.tensor(batch.x, [n, ...inputShape], 'float32');
        const y = tf.tensor1d(batch.y, labelDtype(data));
        const step = computeGradients(model, x, y, {
          countCorrect: !regression,
          regressionErrors: regression,
          loss,
          ...(opts.batchLoss ? { lossFn: opts.batchLoss } : {}),
          ...(opts.forward ? { forward: opts.forward } : {}),
        });
        applyGradients(optimizer, step.grads);
        const stepNo = epoch * batchesPerEpoch + b + 1;
        sparsity?.afterStep(stepNo, fit.epochs * batchesPerEpoch);
        opts.afterStep?.(stepNo, fit.epochs * batchesPerEpoch);
        lossSum += (await step.loss.data())[0]! * n;
        if (step.correct) correct += (await step.correct.data())[0]!;
        if (step.errors) (await step.errors.data()).forEach((v, i) => (errors[i]! += v));
        tf.dispose([
          x,
          y,
          step.loss,
          step.grads,
          ...(step.correct ? [step.correct] : []),
          ...(step.errors ? [step.errors] : []),
        ]);
        seen += n;
        trainMs += performance.now() - t0;
        trainSamples += n;
        if (opts.onProgress && Date.now() - lastReport >= PROGRESS_INTERVAL_MS && b < batchesPerEpoch - 1) {
          lastReport = Date.now();
          await opts.onProgress(
            progress(
              fit,
              epoch,
              b + 1,
              batchesPerEpoch,
              lossSum / seen,
              seen / ((performance.now() - epochStart) / 1000),
            ),
          );
        }
        await yieldToEventLoop();
      }
      const entry: Record<string, number> = { epoch: epoch + 1, loss: lossSum / seen };
      if (regression) Object.assign(entry, regressionMetrics(train, errors[0]!, errors[1]!));
      else entry.accuracy = correct / seen;
      if (validation)
        Object.assign(entry, validationEntry(await evaluate(model, validation, evalBatch, validationLoss(loss))));
      history.push(entry);
      early?.update(model, epoch + 1, entry);
      await opts.checkpoint?.save({
        epoch: epoch + 1,
        history,
        trainSamples,
        trainMs,
        fingerprint,
        ...(await captureState(model, optimizer)),
        ...(early ? { earlyStopping: { state: { ...early.state }, best: await early.encodeBest() } } : {}),
      });
      await opts.onProgress?.(
        progress(fit, epoch, batchesPerEpoch, batchesPerEpoch, entry.loss!, trainSamples / (trainMs / 1000)),
      );
    }

    // Early stopping: the model goes back to its best epoch, and reports that epoch's figures.
    early?.restore(model);
    const kept = early && early.state.bestEpoch > 0 ? history[early.state.bestEpoch - 1] : history.at(-1);
    return {
      metrics: epochMetrics(kept ?? {}),
      history,
      epochs: history.length,
      samplesPerSec: trainMs > 0 ? trainSamples / (trainMs / 1000) : 0,
      ...(resumedFromEpoch !== undefined ? { resumedFromEpoch } : {}),
      ...(early ? { bestEpoch: early.state.bestEpoch, stoppedEpoch: history.length } : {}),
    };
  } finally {
    optimizer.dispose();
    early?.dispose();
    sparsity?.dispose();
  }
}

function progress(
  fit: FitSpec,
  epoch: number,
  batch: number,
  batches: number,
  loss: number,
  samplesPerSec: number,
): TrainProgress {
  return {
    stage: 'training',
    percent: Math.min(100, (100 * (epoch + batch / batches)) / fit.epochs),
    epoch: epoch + 1,
    epochs: fit.epochs,
    step: epoch * batches + batch,
    loss,
    samplesPerSec,
  };
}
