import type { LayerSpec, Task } from '@tq/contracts';
import { inferShapes } from './infer-shapes';
import { ModelSpecError } from './model-spec-error';

/**
 * The checks buildModel makes before tfjs sees a layer list, pure (no tfjs) so the API runs the
 * same ones at submission: shapes (inferShapes) and one output vector; a classifier ends in a
 * softmax (training minimises cross-entropy of probabilities), a regression must not (its output
 * is the standardized target). Returns each layer's output shape.
 */
export function checkModelLayers(
  layers: LayerSpec[],
  prefix = 'model.layers',
  task: Task = 'classification',
): number[][] {
  const shapes = inferShapes(layers, prefix);
  const last = layers.length - 1;
  const output = shapes[last]!;
  if (output.length !== 1) {
    const what =
      task === 'regression'
        ? 'a regression outputs one value'
        : 'a classifier outputs one vector of class probabilities';
    throw new ModelSpecError(
      `${prefix}.${last}`,
      `the model outputs [${output.join(', ')}] per row; ${what} (add a flatten before the last dense layer)`,
    );
  }
  const lastLayer = layers[last]!;
  const endsInSoftmax =
    lastLayer.type === 'activation'
      ? lastLayer.activation === 'softmax'
      : lastLayer.type === 'dense' && lastLayer.activation === 'softmax';
  if (task === 'regression' && endsInSoftmax) {
    throw new ModelSpecError(
      `${prefix}.${last}.activation`,
      'a regression ends in a dense layer of 1 unit with a linear activation (softmax of one value is always 1)',
    );
  }
  if (task === 'classification' && !endsInSoftmax) {
    throw new ModelSpecError(
      `${prefix}.${last}.activation`,
      'the last layer must be a dense (or activation) layer with activation "softmax": classifiers are trained on cross-entropy',
    );
  }
  return shapes;
}

/** checkModelLayers for a classifier (the only task before tables). */
export function checkClassifierLayers(layers: LayerSpec[], prefix = 'model.layers'): number[][] {
  return checkModelLayers(layers, prefix, 'classification');
}

/**
 * A table's layers: the first layer's inputShape may be left out (the preprocessed width, unknown
 * to a user counting one-hot slots, fills it in). A given one is kept: the fit check compares it.
 */
export function withInputShape(layers: LayerSpec[], width: number): LayerSpec[] {
  const [first, ...rest] = layers;
  if (!first || first.inputShape) return layers;
  return [{ ...first, inputShape: [width] }, ...rest];
}
