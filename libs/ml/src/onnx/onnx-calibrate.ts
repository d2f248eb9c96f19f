import * as tf from '@tensorflow/tfjs';

/** Observed range of a weighted layer's input over the calibration rows. */
export interface Range { min: number; max: number }
export type Calibration = Map<string, Range>;

const WEIGHTED = new Set(['Dense', 'Conv2D']);

/**
 * Runs the calibration rows through the model layer by layer (eager `layer.apply` on concrete tensors:
 * no new graph nodes, no model built around the layers, so nothing to dispose but the tensors) and
 * records the min/max of the input of every Dense/Conv2D layer. Batches keep memory bounded.
 */
export function calibrate(model: tf.LayersModel, layers: tf.layers.Layer[], rows: Float32Array, featureCount: number, batchSize = 1024): Calibration {
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const stats: Calibration = new Map();
  const rowCount = rows.length / featureCount;
  for (let start = 0; start < rowCount; start += batchSize) {
    const n = Math.min(batchSize, rowCount - start);
    const observed = tf.tidy(() => {
      let x = tf.tensor(rows.subarray(start * featureCount, (start + n) * featureCount), [n, ...inputShape]);
      const found: Array<[string, tf.Tensor, tf.Tensor]> = [];
      for (const layer of layers) {
        if (WEIGHTED.has(layer.getClassName())) found.push([layer.name, x.min(), x.max()]);
        x = layer.apply(x, { training: false }) as tf.Tensor;
      }
      return found;
    });
    for (const [name, min, max] of observed) {
      const lo = min.dataSync()[0]!;
      const hi = max.dataSync()[0]!;
      min.dispose();
      max.dispose();
      const prev = stats.get(name);
      stats.set(name, prev ? { min: Math.min(prev.min, lo), max: Math.max(prev.max, hi) } : { min: lo, max: hi });
    }
  }
  return stats;
}
