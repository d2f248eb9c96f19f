import * as tf from '@tensorflow/tfjs';

/** A differentiable model: a tfjs LayersModel, or any function of a [n, ...inputShape] batch to [n, outputs]. */
export type Differentiable = tf.LayersModel | ((batch: tf.Tensor) => tf.Tensor);

export interface IntegratedGradients {
  /** One per input feature (flattened input order), in the units of the explained output. */
  attributions: Float32Array;
  /** The explained output at the input and at the baseline. */
  value: number;
  baselineValue: number;
  /**
   * sum(attributions) − (value − baselineValue): zero for the exact path integral; what is left
   * is the quadrature's error, so a client can judge whether `steps` was enough.
   */
  completenessGap: number;
}

/**
 * Integrated gradients (Sundararajan et al. 2017) of output column `target` of `model` for one
 * input row `x` against `baseline`: (x − baseline) ⊙ ∫₀¹ ∇f(baseline + α(x − baseline)) dα, the
 * integral by the trapezoid rule over `steps` intervals (steps + 1 points). Every point of the
 * path goes through the model in one batch, so one forward and one backward pass per row: the
 * caller bounds steps × features. Pure (no I/O, no state kept): it runs wherever the model is.
 */
export function integratedGradients(
  model: Differentiable,
  x: Float32Array,
  baseline: Float32Array,
  steps: number,
  target: number,
): IntegratedGradients {
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  if (baseline.length !== x.length)
    throw new RangeError(`the baseline has ${baseline.length} features, the input ${x.length}`);
  const f = x.length;
  const inputShape = shapeOf(model, f);
  const forward = (batch: tf.Tensor): tf.Tensor =>
    typeof model === 'function' ? model(batch) : (model.apply(batch, { training: false }) as tf.Tensor);
  const column = (out: tf.Tensor): tf.Tensor1D => {
    const width = out.size / out.shape[0];
    if (!Number.isInteger(target) || target < 0 || target >= width)
      throw new RangeError(`target must be an output index in [0, ${width}), got ${target}`);
    // A one-hot mask, not gather: gather's gradient needs UnsortedSegmentSum, which wasm lacks.
    const mask = new Float32Array(width);
    mask[target] = 1;
    return out
      .reshape([out.shape[0], width])
      .mul(tf.tensor2d(mask, [1, width]))
      .sum(1);
  };

  return tf.tidy(() => {
    const xs = tf.tensor1d(x);
    const base = tf.tensor1d(baseline);
    // Both ends first, in one small forward pass: it checks the target outside tf.grad (whose
    // tape would keep its tensors past a throw), and the gradient pass returns only gradients.
    const ends = column(forward(tf.stack([xs, base]).reshape([2, ...inputShape]))).dataSync();
    const [value, baselineValue] = [ends[0]!, ends[1]!];
    const delta = xs.sub(base);
    // α_k = k / steps, k = 0..steps: the path's points, one per batch row.
    const alphas = tf.linspace(0, 1, steps + 1).reshape([steps + 1, 1]);
    const path = base.reshape([1, f]).add(alphas.mul(delta.reshape([1, f])));
    // The sum over the batch: each row's output depends on its own input only, so its gradient
    // with respect to the batch is each point's own gradient.
    const grad = tf.grad((points: tf.Tensor) => column(forward(points.reshape([steps + 1, ...inputShape]))).sum());
    const grads = grad(path).reshape([steps + 1, f]);
    // Trapezoid weights: 1/steps inside, half of it at both ends.
    const weights = new Float32Array(steps + 1).fill(1 / steps);
    weights[0] = weights[steps] = 0.5 / steps;
    const mean = tf
      .tensor2d(weights, [1, steps + 1])
      .matMul(grads)
      .reshape([f]);
    const attributions = mean.mul(delta).dataSync() as Float32Array;
    let sum = 0;
    for (const a of attributions) sum += a;
    return { attributions, value, baselineValue, completenessGap: sum - (value - baselineValue) };
  });
}

/** The model's input shape without the batch dimension ([f] for a plain function). */
function shapeOf(model: Differentiable, features: number): number[] {
  if (typeof model === 'function') return [features];
  const shape = model.inputs[0]!.shape.slice(1) as number[];
  const size = shape.reduce((a, b) => a * b, 1);
  if (size !== features) throw new RangeError(`the model takes ${size} features per row, the input has ${features}`);
  return shape;
}

/**
 * Each feature's mean over `rows` rows of `x` (row-major): the "mean" baseline a version records
 * at training. Summed in float64, so a million rows lose nothing to float32 rounding.
 */
export function featureMeans(x: Float32Array, rows: number, featureCount: number): number[] {
  const sums = new Float64Array(featureCount);
  for (let r = 0; r < rows; r++) {
    const offset = r * featureCount;
    for (let j = 0; j < featureCount; j++) sums[j]! += x[offset + j]!;
  }
  return Array.from(sums, (s) => (rows > 0 ? s / rows : 0));
}
