import * as tf from '@tensorflow/tfjs';
import { ModelSpecError } from '../model/model-spec-error';

/** Layers structured pruning can carry a reduced channel set through unchanged (their weights, if any, per channel). */
const CHANNELWISE = new Set(['MaxPooling2D', 'AveragePooling2D', 'Dropout', 'Activation', 'BatchNormalization']);
const WEIGHTED = new Set(['Dense', 'Conv2D']);

/**
 * Refuses, naming the layer, a model structured pruning cannot rewrite: a layer type other than
 * dense, conv2d, pooling, flatten, dropout, activation and batch normalization (a reshape would
 * scramble the channel order the next layer's rows are picked by), or a dense layer applied to a
 * rank > 1 input.
 */
export function checkStructuredPrunable(model: tf.LayersModel, field: string): void {
  model.layers.forEach((layer, i) => {
    const kind = layer.getClassName();
    const name = `layer ${i} (${kind} "${layer.name}")`;
    if (!WEIGHTED.has(kind) && !CHANNELWISE.has(kind) && kind !== 'Flatten')
      throw new ModelSpecError(field, `${name}: structured pruning cannot rewrite a ${kind} layer`);
    const input = inputShape(layer);
    if (kind === 'Dense' && input.length > 2)
      throw new ModelSpecError(field, `${name}: structured pruning needs dense layers on flat inputs`);
  });
}

/**
 * Removes the `sparsity` share of units of every dense layer and filters of every conv2d layer but
 * the output one, the least important first (L1 norm of the unit's kernel slice in the source), and rewrites the
 * layers after each: batch normalization keeps the surviving channels, flatten maps them to their
 * positions, the next dense/conv2d keeps only the matching input rows. The result is a smaller
 * ordinary model (fewer parameters and FLOPs), built from the source's topology with the new sizes.
 * The caller owns both models.
 */
export async function structuredPrune(
  model: tf.LayersModel,
  sparsity: number,
  field: string,
  /** Units (filters) a layer of `units` keeps; a distillation student passes its own width's rounding. */
  keepOf: (units: number) => number = (units) => Math.max(1, Math.round((1 - sparsity) * units)),
): Promise<{
  model: tf.LayersModel;
  kept: Record<string, [number, number]>;
  /** Per pruned layer, the indices of the units (filters) it kept, ascending. */
  indices: Record<string, number[]>;
}> {
  checkStructuredPrunable(model, field);
  const layers = model.layers;
  const lastWeighted = layers.map((l) => WEIGHTED.has(l.getClassName())).lastIndexOf(true);
  const topology = model.toJSON(null, false) as unknown as {
    config: { layers: Array<{ config: Record<string, unknown> }> };
  };
  const newWeights: tf.Tensor[][] = [];
  const kept: Record<string, [number, number]> = {};
  const indices: Record<string, number[]> = {};
  let inputKeep: number[] | undefined; // surviving indices of the current layer's last input axis
  try {
    for (const [i, layer] of layers.entries()) {
      const kind = layer.getClassName();
      let weights = layer.getWeights().map((w) => w.clone());
      if (kind === 'Flatten' && inputKeep) {
        const shape = inputShape(layer).slice(1) as number[];
        const channels = shape[shape.length - 1]!;
        const positions = shape.slice(0, -1).reduce((a, b) => a * b, 1);
        const flat: number[] = [];
        for (let p = 0; p < positions; p++) for (const k of inputKeep) flat.push(p * channels + k);
        inputKeep = flat;
      } else if (kind === 'BatchNormalization' && inputKeep) {
        weights = gatherAll(weights, inputKeep, 0);
      } else if (WEIGHTED.has(kind)) {
        const [kernel, ...rest] = weights as [tf.Tensor, ...tf.Tensor[]];
        const units = kernel.shape[kernel.shape.length - 1]!;
        const pruned = i !== lastWeighted && sparsity > 0;
        // Ranked on the source's whole kernel, before the rows of removed inputs are dropped.
        const keep = pruned ? mostImportant(kernel, keepOf(units)) : undefined;
        let k = kernel;
        if (inputKeep) k = replace(k, gather(k, inputKeep, kind === 'Dense' ? 0 : 2));
        inputKeep = undefined;
        if (keep) {
          kept[layer.name] = [keep.length, units];
          indices[layer.name] = keep;
          k = replace(k, gather(k, keep, k.rank - 1));
          weights = [k, ...gatherAll(rest, keep, 0)];
          topology.config.layers[i]!.config[kind === 'Dense' ? 'units' : 'filters'] = keep.length;
          inputKeep = keep;
        } else weights = [k, ...rest];
      }
      newWeights.push(weights);
    }
    const pruned = await tf.models.modelFromJSON({
      modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'],
    });
    pruned.layers.forEach((layer, i) => {
      if (newWeights[i]!.length > 0) layer.setWeights(newWeights[i]!);
    });
    return { model: pruned, kept, indices };
  } finally {
    tf.dispose(newWeights.flat());
  }
}

/** Indices (ascending) of the `count` output units with the largest L1 kernel norm. */
function mostImportant(kernel: tf.Tensor, count: number): number[] {
  const axes = kernel.shape.slice(0, -1).map((_, a) => a);
  const norms = tf.tidy(() => tf.sum(tf.abs(kernel), axes).dataSync());
  return Array.from(norms.keys())
    .sort((a, b) => norms[b]! - norms[a]! || a - b)
    .slice(0, count)
    .sort((a, b) => a - b);
}

/**
 * The slices `indices` of `t` along `axis`, as a fresh tensor: the wasm backend records a shape per
 * buffer, and gather's output shares one with an internal 4-d reshape, which its fused matmul and
 * conv kernels then refuse as a bias ("rank-1 bias but got rank 4").
 */
function gather(t: tf.Tensor, indices: number[], axis: number): tf.Tensor {
  const g = tf.tidy(() => tf.gather(t, tf.tensor1d(indices, 'int32'), axis));
  try {
    return tf.tensor(g.dataSync(), g.shape, g.dtype);
  } finally {
    g.dispose();
  }
}

function gatherAll(ts: tf.Tensor[], indices: number[], axis: number): tf.Tensor[] {
  return ts.map((t) => replace(t, gather(t, indices, axis)));
}

/** `next`, disposing `old` (the weights are copies owned here). */
function replace(old: tf.Tensor, next: tf.Tensor): tf.Tensor {
  old.dispose();
  return next;
}

/** The shape (batch axis first) of a sequential layer's one input. */
function inputShape(layer: tf.layers.Layer): Array<number | null> {
  const input = layer.input;
  return (Array.isArray(input) ? input[0] : input)?.shape ?? [];
}
