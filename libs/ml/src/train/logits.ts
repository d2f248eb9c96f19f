import * as tf from '@tensorflow/tfjs';
import { LOSS_EPSILON } from './gradients';

/**
 * A classifier's pre-softmax outputs for `x`: its layers applied in order, the last one (a dense
 * softmax layer, as every classifier the trainer builds ends) without its softmax. Distillation
 * softens these by its temperature: recovering them as log(p) from the softmax output instead
 * loses every class below p = LOSS_EPSILON (a confident teacher's wrong classes sit near 1e-10),
 * which at T = 4 put some 16% of the soft target's mass evenly on them: label smoothing rather
 * than the teacher's knowledge. A model that ends otherwise falls back to log(p), clipped.
 */
export function classifierLogits(model: tf.LayersModel, x: tf.Tensor, training: boolean): tf.Tensor {
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const last = layers.at(-1);
  const kernel = last?.weights.find((w) => w.originalName.endsWith('/kernel'));
  const bias = last?.weights.find((w) => w.originalName.endsWith('/bias'));
  const dense =
    last?.getClassName() === 'Dense' && (last.getConfig() as { activation?: string }).activation === 'softmax';
  if (!dense || !kernel) return logOf(model.apply(x, { training }) as tf.Tensor);
  let h = x;
  for (const layer of layers.slice(0, -1)) h = layer.apply(h, { training }) as tf.Tensor;
  if (h.rank !== 2) return logOf(last.apply(h) as tf.Tensor);
  const z = tf.matMul(h, kernel.read());
  return bias ? tf.add(z, bias.read()) : z;
}

/** log p of softmax outputs, clipped at LOSS_EPSILON: logits up to a per-row shift, which softmax ignores. */
function logOf(p: tf.Tensor): tf.Tensor {
  return tf.log(tf.clipByValue(p, LOSS_EPSILON, 1));
}
