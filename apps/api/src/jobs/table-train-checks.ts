import {
  FieldError,
  type ColumnProfile,
  type DatasetInfo,
  type LayerSpec,
  type TableProfile,
  type Task,
  type TrainRequest,
} from '@tq/contracts';
import { checkLossFitsTask, checkMonitor, withInputShape, type FitData } from '@tq/ml';
import { checkUsable, overrideOf } from '@tq/tables';

/** Most one-hot slots a categorical column gets (the fitted spec keeps at most 100 categories, plus unknown). */
const MAX_CATEGORY_SLOTS = 101;

/** What the API can tell of a table before it is prepared: the task, the class count when known, the rows. */
export interface TableFit {
  task: Task;
  data: FitData;
  /** The layers as the worker will build them, inputShape filled with an estimate of the width when left out. */
  layers?: LayerSpec[];
}

/**
 * The submission checks of a train request on an uploaded table (the worker repeats them on the
 * prepared data): the table is ready (409 while profiling, its own 4xx when it failed), the task
 * fits the label, the output units fit the task. The exact preprocessed width is known only once
 * the preprocessing is fitted on the training split: the input width is not compared here.
 */
export function tableTrainFit(req: TrainRequest, info: DatasetInfo, profile: TableProfile): TableFit {
  checkUsable(info);
  const label = profile.label;
  const labelColumn = profile.columns.find((c) => c.name === label?.column);
  const task = req.task ?? info.task ?? label?.task ?? 'classification';
  if (task === 'regression' && labelColumn && labelColumn.kind !== 'numeric') {
    throw new FieldError('task', `regression needs a numeric label; "${labelColumn.name}" is ${labelColumn.kind}`);
  }
  checkColumns(req, profile);
  checkLossFitsTask(task, req.fit);
  const validates = req.fit.validationSplit > 0;
  if (req.fit.earlyStopping) checkMonitor(req.fit.earlyStopping, task, validates);
  // Classes as profiled, unless the request changes the task or the columns (then re-profiled by the worker).
  const sameProfile = label?.task === task && req.columns === undefined;
  const classCount =
    task === 'regression'
      ? 0
      : sameProfile && label?.task === 'classification'
        ? label.classes.length
        : labelClassCount(req, labelColumn);
  const width = estimatedWidth(profile);
  const layers = req.model.layers ? withInputShape(req.model.layers, width) : undefined;
  const input = layers?.[0]?.inputShape ?? [width];
  const featureCount = input.reduce((a, b) => a * b, 1);
  return { task, data: { featureCount, classCount, rows: profile.rows, task }, ...(layers ? { layers } : {}) };
}

/**
 * The classes a classification on a label profiled otherwise (as a regression target) will find:
 * its distinct values, known from the profile as long as the request does not override the label's
 * kind (then -1, unknown until the worker re-profiles). Refused here rather than by the worker:
 * too many values (over the profile's exact count, 1,000), or fewer than two.
 */
function labelClassCount(req: TrainRequest, labelColumn: ColumnProfile | undefined): number {
  if (!labelColumn || overrideOf(req.columns ?? {}, labelColumn.name) !== undefined) return -1;
  const { name, distinct, distinctExact } = labelColumn;
  if (!distinctExact)
    throw new FieldError(
      'task',
      `classification on "${name}" would have over ${distinct} classes (one per distinct value); use task "regression"`,
    );
  if (distinct < 2)
    throw new FieldError('task', `classification needs two or more classes; "${name}" has ${distinct} distinct value`);
  return distinct;
}

/**
 * The request's column overrides name columns of the table, leave the label and at least one
 * input column, and are not given with `model.from` (a fine-tuned version's preprocessing is reused
 * as it was fitted, so they would change nothing).
 */
function checkColumns(req: TrainRequest, profile: TableProfile): void {
  const overrides = req.columns ?? {};
  if (req.columns && req.model.from)
    throw new FieldError('columns', "fine-tuning reuses the version's fitted preprocessing; columns cannot change it");
  for (const name of Object.keys(overrides)) {
    if (!profile.columns.some((c) => c.name === name))
      throw new FieldError(`columns.${name}`, 'no such column in the dataset');
    if (name === profile.label?.column && overrides[name] === 'ignore')
      throw new FieldError(`columns.${name}`, 'is the label column, so it cannot be ignored');
  }
  const inputs = profile.columns.filter((c) => {
    if (c.name === profile.label?.column) return false;
    const kind = overrideOf(overrides, c.name);
    return kind === undefined ? c.dropped === undefined : kind !== 'ignore';
  });
  if (inputs.length === 0)
    throw new FieldError(
      req.columns ? 'columns' : 'dataset.id',
      'no input column is left: every one is dropped or ignored',
    );
}

/**
 * The preprocessed width as the profile predicts it (categories counted over all rows, not the
 * training split, so it can be a little high): only for shape checks and budgets, never compared.
 */
export function estimatedWidth(profile: TableProfile): number {
  let width = 0;
  for (const c of profile.columns) {
    if (c.dropped !== undefined || c.name === profile.label?.column) continue;
    width += c.kind === 'categorical' ? Math.min(c.distinct + 1, MAX_CATEGORY_SLOTS) : 1;
  }
  return Math.max(width, 1);
}
