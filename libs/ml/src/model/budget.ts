import { TooLargeError, type LayerSpec } from '@tq/contracts';
import { inferShapes } from './infer-shapes';

/** Limits named as their configuration variables (libs/config), so a refusal says what to raise. */
export interface Budgets {
  MAX_MODEL_PARAMS: number;
  MAX_TRAIN_WORK: number;
  MAX_INFER_INSTANCES: number;
  MAX_INFER_VALUES: number;
  MAX_CLASSES: number;
}

/** What a request asks for, in the figures the budgets bound; each part is optional. */
export interface BudgetInput {
  /** A model to build from layers, and the request path of the layer list. */
  layers?: { spec: LayerSpec[]; field: string };
  /** Training: dataset rows × epochs. */
  train?: { rows: number; epochs: number };
  /** Inline inference rows (`input.instances`). */
  instances?: number[][];
  /** A classification's classes, and the request path that names where they come from. */
  classes?: { count: number; field: string };
}

/** Trainable and stateful parameters of each layer, from the shapes inferShapes derives. */
export function countParams(layers: LayerSpec[], prefix = 'model.layers'): number {
  const shapes = inferShapes(layers, prefix);
  return layers.reduce((total, layer, i) => {
    const input = i === 0 ? (layer.inputShape ?? []) : shapes[i - 1]!;
    const channels = input[input.length - 1] ?? 1;
    const bias = layer.type !== 'dense' && layer.type !== 'conv2d' ? 0 : layer.useBias === false ? 0 : 1;
    switch (layer.type) {
      case 'dense':
        return total + (channels + bias) * layer.units;
      case 'conv2d': {
        const [kh, kw] = typeof layer.kernelSize === 'number' ? [layer.kernelSize, layer.kernelSize] : layer.kernelSize;
        return total + (kh * kw * channels + bias) * layer.filters;
      }
      case 'batchNormalization':
        return total + 4 * channels; // gamma, beta, moving mean and variance
      default:
        return total;
    }
  }, 0);
}

/**
 * One check for the API (at submission) and the worker (before it allocates): throws
 * TooLargeError (413) naming the field, the figure and the limit with its variable. Shape errors
 * in the layers throw ModelSpecError (400) first.
 */
export function checkBudgets(input: BudgetInput, budgets: Budgets): void {
  if (input.layers) {
    const params = countParams(input.layers.spec, input.layers.field);
    over(input.layers.field, `${params} parameters`, params, budgets.MAX_MODEL_PARAMS, 'MAX_MODEL_PARAMS');
  }
  if (input.train) {
    const work = input.train.rows * input.train.epochs;
    over(
      'fit.epochs',
      `${input.train.epochs} epochs × ${input.train.rows} rows = ${work} row passes`,
      work,
      budgets.MAX_TRAIN_WORK,
      'MAX_TRAIN_WORK',
    );
  }
  if (input.classes) {
    const { count, field } = input.classes;
    over(field, `${count} classes`, count, budgets.MAX_CLASSES, 'MAX_CLASSES');
  }
  if (input.instances) {
    const rows = input.instances.length;
    over('input.instances', `${rows} rows`, rows, budgets.MAX_INFER_INSTANCES, 'MAX_INFER_INSTANCES');
    const values = input.instances.reduce((n, row) => n + row.length, 0);
    over('input.instances', `${values} values`, values, budgets.MAX_INFER_VALUES, 'MAX_INFER_VALUES');
  }
}

function over(field: string, what: string, figure: number, limit: number, variable: string): void {
  if (figure > limit) throw new TooLargeError(field, `${what} exceed the limit of ${limit} (${variable})`);
}
