import * as tf from '@tensorflow/tfjs';
import type { FitSpec } from '@tq/contracts';
import { lossValue, type LossSpec } from './losses';

/** Probabilities are clipped away from 0 and 1 before the log, as Keras does (its epsilon). */
export const LOSS_EPSILON = 1e-7;

export interface GradientResult {
  /** Mean loss of the batch: (weighted) sparse categorical cross-entropy, or the regression loss. */
  loss: tf.Scalar;
  /** One gradient per trainable variable, keyed by the variable's name (tf.Variable.name). */
  grads: tf.NamedTensorMap;
  /** With `countCorrect`: how many rows the model (in training mode) classified right, as a float32 scalar. */
  correct?: tf.Scalar;
  /** With `regressionErrors`: [sum |error|, sum error²] of the batch on the standardized target. */
  errors?: tf.Tensor1D;
}

export interface GradientOptions {
  /** Also count correct predictions, from the same forward pass (training accuracy at no extra cost). */
  countCorrect?: boolean;
  /** Regression: also sum the absolute and squared errors, from the same forward pass. */
  regressionErrors?: boolean;
  /** What is minimised (default: unweighted cross-entropy, the classifier's loss). */
  loss?: LossSpec;
  /** Minimised instead of `loss` when given (distillation: soft targets from a teacher on the batch `x`). */
  lossFn?: (out: tf.Tensor, y: tf.Tensor, x: tf.Tensor) => tf.Scalar;
  /** Replaces the model's own forward pass in training mode (distillation: the student's logits, classifierLogits). */
  forward?: (x: tf.Tensor) => tf.Tensor;
}

/**
 * The trainable variables of a model, in the model's weight order. Optimizers such as Adam keep
 * their slots by position in the gradient map, so this order is part of the checkpoint format.
 */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  const seen = new Set<string>();
  const out: tf.Variable[] = [];
  for (const w of model.trainableWeights) {
    // LayerVariable.read() returns the backing tf.Variable itself (typed as Tensor by tfjs).
    const v = w.read() as tf.Variable;
    if (!seen.has(v.name)) {
      seen.add(v.name);
      out.push(v);
    }
  }
  return out;
}

/** Mean sparse categorical cross-entropy of softmax outputs `probs` [n, classes] against int class indices `y` [n]. */
export function sparseCategoricalCrossentropy(probs: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const classes = probs.shape[probs.shape.length - 1] ?? 1;
    const labels = tf.oneHot(tf.cast(tf.reshape(y, [-1]), 'int32'), classes);
    const logP = tf.log(tf.clipByValue(probs, LOSS_EPSILON, 1 - LOSS_EPSILON));
    return tf.neg<tf.Scalar>(tf.mean(tf.sum(tf.mul(labels, logP), -1)));
  });
}

/**
 * One forward + backward pass (a classifier: softmax output, int32 labels; a regression: one
 * linear output, float32 standardized targets), in training
 * mode so dropout drops and batch normalisation uses (and updates) batch statistics. The caller owns
 * and disposes `loss` and every tensor in `grads`. Shared by the local training loop and the
 * parameter-server workers, so both compute exactly the same step.
 */
export function computeGradients(
  model: tf.LayersModel,
  x: tf.Tensor,
  y: tf.Tensor,
  opts: GradientOptions = {},
): GradientResult {
  const vars = trainableVariables(model);
  let correct: tf.Scalar | undefined;
  let errors: tf.Tensor1D | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = opts.forward ? opts.forward(x) : model.apply(x, { training: true });
    if (Array.isArray(out) || !(out instanceof tf.Tensor))
      throw new Error('computeGradients expects a single-output model');
    // Kept out of variableGrads' tidy; not on the path to the loss, so backprop ignores them.
    if (opts.countCorrect) correct = tf.keep(countCorrect(out, y));
    if (opts.regressionErrors) errors = tf.keep(errorSums(out, y));
    if (opts.lossFn) return opts.lossFn(out, y, x);
    return opts.loss ? lossValue(opts.loss, out, y) : sparseCategoricalCrossentropy(out, y);
  }, vars);
  return { loss: value, grads, ...(correct ? { correct } : {}), ...(errors ? { errors } : {}) };
}

/** Rows whose most probable class is the label, as a float32 scalar. */
export function countCorrect(probs: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() =>
    tf.sum<tf.Scalar>(tf.cast(tf.equal(tf.argMax(probs, -1), tf.cast(tf.reshape(y, [-1]), 'int32')), 'float32')),
  );
}

/** [sum |out - y|, sum (out - y)²] of a one-output regression, as a float32 tensor of 2. */
export function errorSums(out: tf.Tensor, y: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const err = tf.sub(tf.reshape(out, [-1]), tf.cast(tf.reshape(y, [-1]), 'float32'));
    return tf.stack([tf.sum(tf.abs(err)), tf.sum(tf.square(err))]) as tf.Tensor1D;
  });
}

/** The optimizer a FitSpec names; "momentum" is SGD with momentum 0.9. */
export function createOptimizer(fit: Pick<FitSpec, 'optimizer' | 'learningRate'>): tf.Optimizer {
  const lr = fit.learningRate;
  switch (fit.optimizer) {
    case 'sgd':
      return tf.train.sgd(lr);
    case 'momentum':
      return tf.train.momentum(lr, 0.9);
    case 'adam':
      return tf.train.adam(lr);
    case 'rmsprop':
      return tf.train.rmsprop(lr);
    case 'adagrad':
      return tf.train.adagrad(lr);
    default: {
      const never: never = fit.optimizer;
      throw new Error(`unknown optimizer "${String(never)}"`);
    }
  }
}

/**
 * Applies gradients keyed by variable name (as computeGradients returns them). Does not dispose
 * `grads`: the caller may still need them (e.g. to send them to a parameter server).
 */
export function applyGradients(optimizer: tf.Optimizer, grads: tf.NamedTensorMap): void {
  optimizer.applyGradients(grads);
}
