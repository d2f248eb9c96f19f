import type { LayerSpec } from '@tq/contracts';
import { ModelSpecError } from './model-spec-error';

type Pair = number | [number, number];
const pair = (p: Pair | undefined, fallback: [number, number]): [number, number] =>
  p === undefined ? fallback : typeof p === 'number' ? [p, p] : p;
const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const show = (shape: number[]): string => `[${shape.join(', ')}]`;

/**
 * Walks a layer list and returns each layer's output shape (per sample, no batch axis), throwing
 * ModelSpecError with the offending field before tfjs sees the model: tfjs either throws
 * messages without the layer's index or, for a kernel larger than its input, silently builds a
 * layer with an empty output. The rules are those of tfjs-layers (channels-last, Keras padding).
 */
export function inferShapes(layers: LayerSpec[], prefix = 'model.layers'): number[][] {
  const first = layers[0];
  if (!first) throw new ModelSpecError(prefix, 'needs at least one layer');
  if (!first.inputShape)
    throw new ModelSpecError(
      `${prefix}.0.inputShape`,
      'the first layer must declare inputShape (only on an uploaded table is it filled in with the preprocessed width)',
    );
  let shape = [...first.inputShape];
  const names = new Set<string>();
  return layers.map((layer, i) => {
    const at = (field?: string): string => (field ? `${prefix}.${i}.${field}` : `${prefix}.${i}`);
    if (i > 0 && layer.inputShape && show(layer.inputShape) !== show(shape)) {
      throw new ModelSpecError(
        at('inputShape'),
        `only the first layer declares inputShape; this layer receives ${show(shape)}`,
      );
    }
    if (layer.name !== undefined) {
      if (names.has(layer.name)) throw new ModelSpecError(at('name'), `"${layer.name}" names two layers`);
      names.add(layer.name);
    }
    shape = outputShape(layer, shape, at);
    return shape;
  });
}

function outputShape(layer: LayerSpec, input: number[], at: (field?: string) => string): number[] {
  switch (layer.type) {
    case 'dense': // like Keras, dense on a rank > 1 input acts on the last axis
      return [...input.slice(0, -1), layer.units];
    case 'flatten':
      return [product(input)];
    case 'reshape':
      if (product(layer.targetShape) !== product(input)) {
        throw new ModelSpecError(
          at('targetShape'),
          `${show(layer.targetShape)} holds ${product(layer.targetShape)} values but its input ${show(input)} holds ${product(input)}`,
        );
      }
      return [...layer.targetShape];
    case 'dropout':
    case 'batchNormalization':
    case 'activation':
      return input;
    case 'conv2d': {
      const [h, w] = image(input, layer.type, at);
      const kernel = pair(layer.kernelSize, [1, 1]);
      const strides = pair(layer.strides, [1, 1]);
      const dilation = pair(layer.dilationRate, [1, 1]);
      if ((strides[0] > 1 || strides[1] > 1) && (dilation[0] > 1 || dilation[1] > 1)) {
        throw new ModelSpecError(at('dilationRate'), 'tfjs supports dilationRate > 1 only with strides 1');
      }
      const effective: [number, number] = [(kernel[0] - 1) * dilation[0] + 1, (kernel[1] - 1) * dilation[1] + 1];
      return [
        ...window([h, w], effective, strides, layer.padding ?? 'valid', at('kernelSize'), 'kernel'),
        layer.filters,
      ];
    }
    case 'maxPooling2d':
    case 'averagePooling2d': {
      const [h, w, c] = image(input, layer.type, at);
      const pool = pair(layer.poolSize, [2, 2]);
      const strides = pair(layer.strides, pool);
      return [...window([h, w], pool, strides, layer.padding ?? 'valid', at('poolSize'), 'pool'), c];
    }
    default: {
      const never: never = layer;
      throw new ModelSpecError(at('type'), `unknown layer type "${(never as { type: string }).type}"`);
    }
  }
}

function image(input: number[], type: string, at: (field?: string) => string): [number, number, number] {
  if (input.length !== 3) {
    throw new ModelSpecError(
      at(),
      `${type} needs a [height, width, channels] input but receives ${show(input)}; put a reshape before it (e.g. targetShape [28, 28, 1])`,
    );
  }
  return input as [number, number, number];
}

/** Output size of a sliding window per spatial axis (Keras: valid = floor((n-k)/s)+1, same = ceil(n/s)). */
function window(
  size: [number, number],
  k: [number, number],
  s: [number, number],
  padding: 'valid' | 'same',
  field: string,
  what: string,
): [number, number] {
  if (padding === 'same') return [Math.ceil(size[0] / s[0]), Math.ceil(size[1] / s[1])];
  if (k[0] > size[0] || k[1] > size[1]) {
    throw new ModelSpecError(
      field,
      `${what} ${k[0]}x${k[1]} is larger than its ${size[0]}x${size[1]} input (padding "valid")`,
    );
  }
  return [Math.floor((size[0] - k[0]) / s[0]) + 1, Math.floor((size[1] - k[1]) / s[1]) + 1];
}
