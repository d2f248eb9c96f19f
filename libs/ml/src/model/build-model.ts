import * as tf from '@tensorflow/tfjs';
import type { LayerSpec, Task } from '@tq/contracts';
import { mixSeed } from '../data/prng';
import { checkModelLayers } from './check-classifier';
import { ModelSpecError } from './model-spec-error';

export interface BuildModelOptions {
  /** Same seed, same layers → the same initial weights. */
  seed: number;
  /** Prefix of the field named in errors. */
  fieldPrefix?: string;
  /** Default classification (softmax at the end); a regression ends in one linear unit. */
  task?: Task;
}

/**
 * Builds a sequential tfjs model from a validated layer list. The layers are checked first
 * (checkModelLayers: shapes, one output vector, softmax at the end of a classifier). Kernels get
 * Glorot-uniform initialisers seeded from (seed, layer index); biases start at zero. Dropout masks are not seeded: tfjs's dropout with a
 * fixed seed would draw the same mask at every step, so runs with dropout are not bit-reproducible.
 */
export function buildModel(layers: LayerSpec[], opts: BuildModelOptions): tf.LayersModel {
  const prefix = opts.fieldPrefix ?? 'model.layers';
  checkModelLayers(layers, prefix, opts.task ?? 'classification');
  const model = tf.sequential();
  try {
    layers.forEach((spec, i) => model.add(toLayer(spec, mixSeed(opts.seed, i), i === 0)));
  } catch (err) {
    model.dispose();
    throw err instanceof ModelSpecError
      ? err
      : new ModelSpecError(`${prefix}`, `tfjs refused the model: ${(err as Error).message}`);
  }
  return model;
}

function toLayer(spec: LayerSpec, seed: number, first: boolean): tf.layers.Layer {
  const common = {
    ...(spec.name ? { name: spec.name } : {}),
    ...(first && spec.inputShape ? { inputShape: spec.inputShape } : {}),
  };
  const kernelInitializer = tf.initializers.glorotUniform({ seed });
  switch (spec.type) {
    case 'dense':
      return tf.layers.dense({
        ...common,
        units: spec.units,
        activation: spec.activation ?? 'linear',
        useBias: spec.useBias ?? true,
        kernelInitializer,
      });
    case 'conv2d':
      return tf.layers.conv2d({
        ...common,
        filters: spec.filters,
        kernelSize: spec.kernelSize,
        strides: spec.strides ?? 1,
        padding: spec.padding ?? 'valid',
        dilationRate: spec.dilationRate ?? 1,
        activation: spec.activation ?? 'linear',
        useBias: spec.useBias ?? true,
        kernelInitializer,
      });
    case 'maxPooling2d':
      return tf.layers.maxPooling2d({
        ...common,
        poolSize: spec.poolSize ?? 2,
        ...(spec.strides ? { strides: spec.strides } : {}),
        padding: spec.padding ?? 'valid',
      });
    case 'averagePooling2d':
      return tf.layers.averagePooling2d({
        ...common,
        poolSize: spec.poolSize ?? 2,
        ...(spec.strides ? { strides: spec.strides } : {}),
        padding: spec.padding ?? 'valid',
      });
    case 'flatten':
      return tf.layers.flatten(common);
    case 'dropout':
      return tf.layers.dropout({ ...common, rate: spec.rate });
    case 'batchNormalization':
      return tf.layers.batchNormalization({
        ...common,
        momentum: spec.momentum ?? 0.99,
        epsilon: spec.epsilon ?? 1e-3,
      });
    case 'reshape':
      return tf.layers.reshape({ ...common, targetShape: spec.targetShape });
    case 'activation':
      return tf.layers.activation({ ...common, activation: spec.activation });
    default: {
      const never: never = spec;
      throw new ModelSpecError('model.layers', `unknown layer type "${(never as { type: string }).type}"`);
    }
  }
}
