import * as tf from '@tensorflow/tfjs';
import type { EarlyStoppingSpec, Task } from '@tq/contracts';
import { ModelSpecError } from '../model/model-spec-error';

export type { EarlyStoppingState } from './checkpoint';
import type { EarlyStoppingState, EncodedTensors } from './checkpoint';

/** Metrics where larger is better; every other monitored one (losses, errors) is minimised. */
const MAXIMISED = new Set(['valAccuracy', 'valR2']);

/** The metrics an epoch entry holds for a task, with or without a validation split. */
export function checkMonitor(spec: EarlyStoppingSpec, task: Task, hasValidation: boolean): void {
  const produced = ['loss'];
  if (hasValidation)
    produced.push('valLoss', ...(task === 'regression' ? ['valMae', 'valRmse', 'valR2'] : ['valAccuracy']));
  if (!produced.includes(spec.monitor)) {
    throw new ModelSpecError(
      'fit.earlyStopping.monitor',
      `"${spec.monitor}" is not measured in this run (${task}${hasValidation ? '' : ', no validation split'}); one of ${produced.join(', ')}`,
    );
  }
}

/**
 * Keras's EarlyStopping with restore_best_weights: an epoch improves when the monitored value
 * beats the best by more than minDelta; after `patience` epochs without one, training stops. The
 * best epoch's weights are copied (tensors the caller disposes) so they can be restored at the end.
 */
export class EarlyStopping {
  best: tf.Tensor[] = [];

  constructor(
    readonly spec: EarlyStoppingSpec,
    public state: EarlyStoppingState = { bestEpoch: 0, bestValue: Number.NaN, wait: 0, stopped: false },
  ) {}

  /** After epoch `epoch` (1-based) with its history entry; returns true when training should stop. */
  update(model: tf.LayersModel, epoch: number, entry: Record<string, number>): boolean {
    const value = entry[this.spec.monitor] ?? Number.NaN;
    const sign = MAXIMISED.has(this.spec.monitor) ? 1 : -1;
    const s = this.state;
    const improved = Number.isNaN(s.bestValue) || sign * (value - s.bestValue) > this.spec.minDelta;
    if (improved && !Number.isNaN(value)) {
      s.bestEpoch = epoch;
      s.bestValue = value;
      s.wait = 0;
      tf.dispose(this.best);
      this.best = model.getWeights().map((w) => w.clone());
    } else {
      s.wait++;
      if (s.wait >= this.spec.patience) s.stopped = true;
    }
    return s.stopped;
  }

  /** Puts the best epoch's weights back into the model (no-op before any epoch improved). */
  restore(model: tf.LayersModel): void {
    if (this.best.length > 0) model.setWeights(this.best);
  }

  async encodeBest(): Promise<EncodedTensors> {
    return tf.io.encodeWeights(this.best.map((tensor, i) => ({ name: `b${i}`, tensor })));
  }

  /** Resumes from a checkpoint's state and best weights. */
  loadBest(state: EarlyStoppingState, best: EncodedTensors | undefined): void {
    this.state = { ...state };
    tf.dispose(this.best);
    const map = best ? tf.io.decodeWeights(best.data, best.specs) : {};
    this.best = (best?.specs ?? []).map((s) => map[s.name]!);
  }

  dispose(): void {
    tf.dispose(this.best);
    this.best = [];
  }
}
