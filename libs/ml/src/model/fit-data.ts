import * as tf from '@tensorflow/tfjs';
import type { TabularData } from '@tq/storage';
import { ModelSpecError } from './model-spec-error';

const show = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** The per-sample input shape of a single-input model (no batch axis). */
export function modelInputShape(model: tf.LayersModel): number[] {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape.slice(1).some((d) => d === null))
    throw new ModelSpecError('model', 'the model needs one input of fixed shape');
  return shape.slice(1) as number[];
}

/**
 * Checks that a model can train on (or predict) the data: its input holds as many values as a row
 * has features, and its output is one vector with a unit per class. Throws ModelSpecError naming
 * the field (`field` defaults to "model.layers"; "model.from" suits a fine-tuned version).
 *
 * Reshape rule: datasets are flat rows; a row is fed to a model whose input shape is e.g.
 * [28, 28, 1] by reshaping it, row-major (channels last): value k of the row lands at
 * (k / (W*C), (k / C) % W, k % C). Only the element count has to match.
 */
export function checkModelFitsData(
  model: tf.LayersModel,
  data: Pick<TabularData, 'featureCount' | 'classes'>,
  field = 'model.layers',
): void {
  const input = modelInputShape(model);
  const size = input.reduce((a, b) => a * b, 1);
  const lastIndex = model.layers.length - 1;
  const firstField = field === 'model.layers' ? `${field}.0.inputShape` : field;
  const lastField = field === 'model.layers' ? `${field}.${lastIndex}` : field;
  if (size !== data.featureCount) {
    throw new ModelSpecError(
      firstField,
      `the model takes ${show(input)} (${size} values per row) but the dataset rows have ${data.featureCount} features`,
    );
  }
  const output = model.outputs[0]?.shape ?? [];
  if (output.length !== 2) {
    throw new ModelSpecError(
      lastField,
      `the model outputs ${show(output.slice(1) as number[])} per row; a classifier outputs one vector of class probabilities (add a flatten before the last dense layer)`,
    );
  }
  if (output[1] !== data.classes.length) {
    throw new ModelSpecError(
      field === 'model.layers' ? `${lastField}.units` : field,
      `the last layer has ${output[1]} units but the dataset has ${data.classes.length} classes`,
    );
  }
}

/** Rows [start, start+count) of the data as one input tensor of the model's shape (see the reshape rule above). */
export function rowsToTensor(
  data: Pick<TabularData, 'x' | 'featureCount'>,
  start: number,
  count: number,
  inputShape: number[],
): tf.Tensor {
  return tf.tensor(
    data.x.subarray(start * data.featureCount, (start + count) * data.featureCount),
    [count, ...inputShape],
    'float32',
  );
}
