import * as tf from '@tensorflow/tfjs';
import type { FitSpec, Task } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import { ModelSpecError } from '../model/model-spec-error';

/** Probabilities are clipped away from 0 and 1 before the log, as Keras does (its epsilon). */
const EPSILON = 1e-7;

/** What a run minimises: decided once from the task and fit, the same in every process of a run. */
export type LossSpec =
  | { task: 'classification'; loss: 'crossentropy'; classWeights?: number[] }
  | { task: 'regression'; loss: 'mse' | 'mae' | 'huber' };

/**
 * The loss of a run: classification trains on cross-entropy (weighted per class with
 * `classWeights: "balanced"`: rows / (classes × rows of the class), over the training rows);
 * regression on mse (default), mae or huber (delta 1) of the standardized target.
 */
export function lossSpecOf(
  data: Pick<TabularData, 'task' | 'classes' | 'y'>,
  fit: Pick<FitSpec, 'loss' | 'classWeights'>,
  trainRows: number,
): LossSpec {
  checkLossFitsTask(data.task, fit);
  if (data.task === 'regression')
    return { task: 'regression', loss: fit.loss === 'crossentropy' ? 'mse' : (fit.loss ?? 'mse') };
  if (!fit.classWeights) return { task: 'classification', loss: 'crossentropy' };
  return { task: 'classification', loss: 'crossentropy', classWeights: balancedWeights(data, trainRows) };
}

/** fit.loss and fit.classWeights against the task (the API checks the same at submission). */
export function checkLossFitsTask(task: Task, fit: Pick<FitSpec, 'loss' | 'classWeights'>): void {
  if (task === 'regression') {
    if (fit.loss === 'crossentropy') throw new ModelSpecError('fit.loss', 'a regression trains on mse, mae or huber');
    if (fit.classWeights) throw new ModelSpecError('fit.classWeights', 'only for classification');
  } else if (fit.loss !== undefined && fit.loss !== 'crossentropy') {
    throw new ModelSpecError('fit.loss', `a classifier trains on crossentropy, not ${fit.loss}`);
  }
}

/** rows / (classes × rows of class c) over the first `trainRows` rows; 0 for a class absent there. */
export function balancedWeights(data: Pick<TabularData, 'classes' | 'y'>, trainRows: number): number[] {
  const k = data.classes.length;
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < trainRows; i++) counts[data.y[i]!]!++;
  return counts.map((n) => (n > 0 ? trainRows / (k * n) : 0));
}

/** Mean loss of a batch (sample-weighted mean for weighted cross-entropy, as Keras's sample weights). */
export function lossValue(spec: LossSpec, out: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    if (spec.task === 'classification') {
      const classes = out.shape[out.shape.length - 1] ?? 1;
      const index = tf.cast(tf.reshape(y, [-1]), 'int32');
      const logP = tf.log(tf.clipByValue(out, EPSILON, 1 - EPSILON));
      const perRow = tf.neg(tf.sum(tf.mul(tf.oneHot(index, classes), logP), -1));
      if (!spec.classWeights) return tf.mean<tf.Scalar>(perRow);
      return tf.mean<tf.Scalar>(tf.mul(perRow, tf.gather(tf.tensor1d(spec.classWeights, 'float32'), index)));
    }
    const err = tf.sub(tf.reshape(out, [-1]), tf.cast(tf.reshape(y, [-1]), 'float32'));
    if (spec.loss === 'mae') return tf.mean<tf.Scalar>(tf.abs(err));
    if (spec.loss === 'mse') return tf.mean<tf.Scalar>(tf.square(err));
    // Huber, delta 1: quadratic near zero, linear beyond (Keras's definition).
    const a = tf.abs(err);
    const quadratic = tf.minimum(a, 1);
    return tf.mean<tf.Scalar>(tf.add(tf.mul(0.5, tf.square(quadratic)), tf.sub(a, quadratic)));
  });
}

/** The loss validation reports: class weights shape training only (as Keras's class_weight). */
export function validationLoss(spec: LossSpec): LossSpec {
  return spec.task === 'classification' ? { task: 'classification', loss: 'crossentropy' } : spec;
}
