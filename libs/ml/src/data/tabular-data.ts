import type { PreprocessingSpec, Task } from '@tq/contracts';

/**
 * Rows ready for a model: `x` is rows × featureCount float32 (row-major); `inputShape` is the
 * natural shape of one row ([28, 28, 1] for MNIST, [width] for a preprocessed table), its element
 * count is featureCount. `y` holds each row's class index into `classes` (classification) or its
 * standardized target (regression: `preprocessing.target` maps it back to the target's units).
 */
export interface TabularData {
  x: Float32Array;
  y: Int32Array | Float32Array;
  rows: number;
  featureCount: number;
  inputShape: number[];
  task: Task;
  /** Class names in output order; empty for regression. */
  classes: string[];
  /**
   * The last `validationRows` rows are the validation split, chosen when the table was prepared
   * (stratified for classification, preprocessing fitted on the other rows only). Absent: the last
   * `fit.validationSplit` of the rows are held out, as Keras does.
   */
  validationRows?: number;
  /** Uploaded tables: the preprocessing fitted on the training split (stored as preprocessing.json). */
  preprocessing?: PreprocessingSpec;
  /** Column names of the features, where the data came from a table. */
  featureColumns?: string[];
  labelColumn?: string;
}

/** What a version records of its data, without the rows: enough to build and register a model. */
export type DataShape = Pick<TabularData, 'inputShape' | 'featureCount' | 'task' | 'classes' | 'preprocessing'>;

/** The shape of `data` alone (holding it does not keep the rows alive). */
export function shapeOf(data: DataShape): DataShape {
  const { inputShape, featureCount, task, classes, preprocessing } = data;
  return { inputShape, featureCount, task, classes, ...(preprocessing ? { preprocessing } : {}) };
}
