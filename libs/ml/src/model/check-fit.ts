import type { LayerSpec, ModelVersionMeta, Task } from '@tq/contracts';
import { trainRowCount } from '../data/batches';
import { checkModelLayers } from './check-classifier';
import { ModelSpecError } from './model-spec-error';

/** A model as the fit check sees it: per-row input and output shapes, and where to name a mismatch. */
export interface ModelIo {
  input: readonly number[];
  output: readonly number[];
  /** A request path: "model.layers" (a layer list) or the field of a stored version ("model.from"). */
  field: string;
  /** For a layer list: its length and whether the last layer is dense (it then owns `units`). */
  layers?: { count: number; lastIsDense: boolean };
}

/** The dataset figures the check compares (BUILTIN_DATASET_SHAPES and DatasetInfo both give them). */
export interface FitData {
  featureCount: number;
  classCount: number;
  rows: number;
  /** Default classification: one output unit per class; a regression has one output. */
  task?: Task;
  /** A prepared table's own validation rows (fit.validationSplit was applied when it was prepared). */
  validationRows?: number;
}

/** The shapes of a layer list, after the checks buildModel makes (shapes, one output vector, softmax or not by task). */
export function layersIo(layers: LayerSpec[], field = 'model.layers', task: Task = 'classification'): ModelIo {
  const shapes = checkModelLayers(layers, field, task);
  const last = layers[layers.length - 1];
  return {
    input: layers[0]?.inputShape ?? [],
    output: shapes[shapes.length - 1] ?? [],
    field,
    layers: { count: layers.length, lastIsDense: last?.type === 'dense' },
  };
}

/** A registered version's shapes from its metadata: one probability per class it knows, or one value. */
export function versionIo(
  meta: Pick<ModelVersionMeta, 'inputShape' | 'featureCount' | 'classes'> & { task?: Task },
  field: string,
): ModelIo {
  const input = meta.inputShape.length > 0 ? meta.inputShape : [meta.featureCount];
  return { input, output: [meta.task === 'regression' ? 1 : meta.classes.length], field };
}

const show = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * One fit check for the API (at submission) and the worker (before training): the model's input
 * holds as many values as a row has features, its output is one vector with a unit per class, and,
 * given `fit`, validationSplit leaves training rows. Throws ModelSpecError (400) naming the field.
 *
 * Reshape rule: datasets are flat rows; a row is fed to a model whose input shape is e.g.
 * [28, 28, 1] by reshaping it, row-major (channels last). Only the element count has to match.
 */
export function checkFitsData(model: ModelIo, data: FitData, fit?: { validationSplit: number }): void {
  const { field, layers } = model;
  const lastField = layers ? `${field}.${layers.count - 1}` : field;
  const size = model.input.reduce((a, b) => a * b, 1);
  if (size !== data.featureCount) {
    throw new ModelSpecError(
      layers ? `${field}.0.inputShape` : field,
      `the model takes ${show(model.input)} (${size} values per row) but the dataset rows have ${data.featureCount} features`,
    );
  }
  const regression = data.task === 'regression';
  if (model.output.length !== 1) {
    const what = regression
      ? 'a regression outputs one value'
      : 'a classifier outputs one vector of class probabilities';
    throw new ModelSpecError(
      lastField,
      `the model outputs ${show(model.output)} per row; ${what} (add a flatten before the last dense layer)`,
    );
  }
  const units = model.output[0];
  const expected = regression ? 1 : data.classCount;
  if (units !== expected) {
    throw new ModelSpecError(
      layers?.lastIsDense ? `${lastField}.units` : lastField,
      regression
        ? `the model outputs ${units} values per row but a regression outputs 1 (the target)`
        : `the model outputs ${units} values per row (one per class) but the dataset has ${data.classCount} classes`,
    );
  }
  if (fit && trainRowCount(data, fit.validationSplit) === 0) {
    throw new ModelSpecError('fit.validationSplit', `leaves no training rows out of ${data.rows}`);
  }
}
