import * as tf from '@tensorflow/tfjs';
import type { TabularData } from '../data/tabular-data';
import { checkFitsData, type ModelIo } from './check-fit';
import { ModelSpecError } from './model-spec-error';

/** The per-sample input shape of a single-input model (no batch axis). */
export function modelInputShape(model: tf.LayersModel): number[] {
  const shape = model.inputs[0]?.shape;
  if (!shape || shape.slice(1).some((d) => d === null))
    throw new ModelSpecError('model', 'the model needs one input of fixed shape');
  return shape.slice(1) as number[];
}

/**
 * checkFitsData (the API's check, same rules and field names) on a built model's shapes: `field`
 * defaults to "model.layers" (mismatches name a layer); "model.from" suits a fine-tuned version.
 * Given `fit`, also checks that validationSplit leaves training rows.
 */
export function checkModelFitsData(
  model: tf.LayersModel,
  data: Pick<TabularData, 'featureCount' | 'classes' | 'rows'> & Partial<Pick<TabularData, 'task' | 'validationRows'>>,
  field = 'model.layers',
  fit?: { validationSplit: number },
): void {
  const last = model.layers[model.layers.length - 1];
  const io: ModelIo = {
    input: modelInputShape(model),
    // A null (unknown) output dimension shows as -1: it never equals a class count.
    output: (model.outputs[0]?.shape ?? []).slice(1).map((d) => d ?? -1),
    field,
    ...(field === 'model.layers'
      ? { layers: { count: model.layers.length, lastIsDense: last?.getClassName() === 'Dense' } }
      : {}),
  };
  const { featureCount, rows, task, validationRows } = data;
  const fitData = {
    featureCount,
    classCount: data.classes.length,
    rows,
    ...(task ? { task } : {}),
    ...(validationRows !== undefined ? { validationRows } : {}),
  };
  checkFitsData(io, fitData, fit);
}

/** Rows [start, start+count) of the data as one input tensor of the model's shape (the reshape rule of checkFitsData). */
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
