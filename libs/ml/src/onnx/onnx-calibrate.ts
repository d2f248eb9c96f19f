import * as tf from '@tensorflow/tfjs';

export interface Range {
  min: number;
  max: number;
}
/** Observed ranges of a weighted layer over the calibration rows: its input and its output before the activation. */
export interface LayerRanges {
  input: Range;
  preActivation: Range;
}
/** Keyed by layer name, in layer order. */
export type Calibration = Map<string, LayerRanges>;

const WEIGHTED = new Set(['Dense', 'Conv2D']);

/**
 * Runs the calibration rows through the model layer by layer (eager `layer.apply` on concrete tensors:
 * no graph nodes are added and no model is built around the layers, so only tensors need disposing)
 * and records, for every Dense/Conv2D layer, the min/max of its input and of its pre-activation output
 * (recomputed from the layer's weights: the layer itself only exposes the activated output).
 */
export function calibrate(
  model: tf.LayersModel,
  layers: tf.layers.Layer[],
  rows: Float32Array,
  featureCount: number,
  batchSize = 1024,
): Calibration {
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const stats: Calibration = new Map();
  const rowCount = rows.length / featureCount;
  for (let start = 0; start < rowCount; start += batchSize) {
    const n = Math.min(batchSize, rowCount - start);
    const observed = tf.tidy(() => {
      let x = tf.tensor(rows.subarray(start * featureCount, (start + n) * featureCount), [n, ...inputShape]);
      const found: Array<[string, tf.Tensor[]]> = [];
      for (const layer of layers) {
        if (WEIGHTED.has(layer.getClassName())) {
          const pre = preActivation(layer, x);
          found.push([layer.name, [x.min(), x.max(), pre.min(), pre.max()]]);
        }
        x = layer.apply(x, { training: false }) as tf.Tensor;
      }
      return found;
    });
    for (const [name, tensors] of observed) {
      const [inMin, inMax, preMin, preMax] = tensors.map((t) => t.dataSync()[0]!) as [number, number, number, number];
      tf.dispose(tensors);
      const prev = stats.get(name);
      stats.set(name, {
        input: widen(prev?.input, inMin, inMax),
        preActivation: widen(prev?.preActivation, preMin, preMax),
      });
    }
  }
  return stats;
}

function widen(r: Range | undefined, min: number, max: number): Range {
  return r ? { min: Math.min(r.min, min), max: Math.max(r.max, max) } : { min, max };
}

/** x·kernel + bias (Dense) or conv2d(x, kernel) + bias (Conv2D), as tfjs computes them before the activation. */
function preActivation(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const weight = (role: string) => layer.weights.find((w) => w.originalName.split('/').pop() === role)?.read();
  const kernel = weight('kernel')!;
  const bias = weight('bias');
  const cfg = layer.getConfig();
  let y: tf.Tensor;
  if (layer.getClassName() === 'Dense') {
    y = tf.matMul(x.reshape([-1, kernel.shape[0]]), kernel);
  } else {
    const pair = (v: unknown): [number, number] =>
      v == null
        ? [1, 1]
        : typeof v === 'number'
          ? [v, v]
          : [(v as number[])[0]!, (v as number[])[1] ?? (v as number[])[0]!];
    y = tf.conv2d(
      x as tf.Tensor4D,
      kernel as tf.Tensor4D,
      pair(cfg.strides),
      cfg.padding as 'same' | 'valid',
      'NHWC',
      pair(cfg.dilationRate),
    );
  }
  return bias ? tf.add(y, bias) : y;
}
