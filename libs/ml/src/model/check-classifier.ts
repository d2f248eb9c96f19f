import type { LayerSpec } from '@tq/contracts';
import { inferShapes } from './infer-shapes';
import { ModelSpecError } from './model-spec-error';

/**
 * The checks buildModel makes before tfjs sees a layer list, pure (no tfjs) so the API runs the
 * same ones at submission: shapes (inferShapes), one output vector, a softmax at the end (training
 * minimises cross-entropy of probabilities). Returns each layer's output shape.
 */
export function checkClassifierLayers(layers: LayerSpec[], prefix = 'model.layers'): number[][] {
  const shapes = inferShapes(layers, prefix);
  const last = layers.length - 1;
  const output = shapes[last]!;
  if (output.length !== 1) {
    throw new ModelSpecError(
      `${prefix}.${last}`,
      `the model outputs [${output.join(', ')}] per row; a classifier outputs one vector of class probabilities (add a flatten before the last dense layer)`,
    );
  }
  const lastLayer = layers[last]!;
  const endsInSoftmax =
    lastLayer.type === 'activation'
      ? lastLayer.activation === 'softmax'
      : lastLayer.type === 'dense' && lastLayer.activation === 'softmax';
  if (!endsInSoftmax) {
    throw new ModelSpecError(
      `${prefix}.${last}.activation`,
      'the last layer must be a dense (or activation) layer with activation "softmax": models here are classifiers trained on cross-entropy',
    );
  }
  return shapes;
}
