import { FieldError, type PreprocessingSpec, type TableProfile } from '@tq/contracts';
import { categoryKey, isMissing } from './cells';
import { RowEncoder } from './encode';
import { fitPreprocessing } from './fit';
import { at } from './limits';
import { splitRows, TRAIN, VALIDATION } from './split';
import type { TableSource } from './table-source';
import { targetEncoder } from './target';

export interface PrepareOptions {
  /** From profileTable with a label (its task decides stratification and the target). */
  profile: TableProfile;
  /** Fraction of labelled rows held out for validation (0 for none). */
  validationSplit: number;
  seed?: number;
  impute?: 'mean' | 'median';
  /**
   * Encode with this spec instead of fitting one (fine-tuning a version that has its
   * preprocessing.json): two passes, the same features the version was trained on.
   */
  spec?: PreprocessingSpec;
}

export interface Matrix {
  rows: number;
  /** rows × spec.width, row-major. */
  features: Float32Array;
  /** Class indices, or standardized regression targets. */
  targets: Float32Array;
}

export interface PreparedTable {
  spec: PreprocessingSpec;
  train: Matrix;
  validation: Matrix;
  /** Rows left out because their label is missing. */
  unlabelled: number;
}

/**
 * The whole path from a stored table to training matrices, in three streaming passes over
 * `open()` (labels → split, training rows → fitted spec, all rows → matrices). Memory: the two
 * float32 matrices (one buffer) plus 9 bytes per row while splitting, 5 after. `open` must give the table that was profiled.
 */
export async function prepareTable(open: () => Promise<TableSource>, opts: PrepareOptions): Promise<PreparedTable> {
  const label = opts.profile.label;
  if (!label) throw new FieldError('label', 'a label column is needed');
  if (opts.spec) checkSameTarget(opts.spec, label);
  const classes = label.task === 'classification' ? label.classes.map((c) => c.value) : undefined;
  const keys = await splitKeys(await open(), opts.profile.rows, label.column, classes);
  const roles = splitRows(keys, {
    fraction: opts.validationSplit,
    seed: opts.seed ?? 1,
    stratify: label.task === 'classification',
  });
  const spec =
    opts.spec ?? (await fitPreprocessing(await open(), { profile: opts.profile, impute: opts.impute, roles }));
  const count = (role: number) => roles.reduce((n, r) => n + (r === role ? 1 : 0), 0);
  const [train, validation] = matrices(count(TRAIN), count(VALIDATION), spec.width);
  const table = await open();
  const encoder = new RowEncoder(spec, table.columns);
  const encodeTarget = targetEncoder(spec.target);
  const labelIndex = table.columns.indexOf(label.column);
  const filled = [0, 0];
  let row = 0;
  for await (const batch of table.batches) {
    for (const cells of batch) {
      const role = roles[row++];
      if (role !== TRAIN && role !== VALIDATION) continue;
      const m = role === TRAIN ? train : validation;
      const i = filled[role]!++;
      encoder.encode(cells, m.features, i * spec.width, row);
      m.targets[i] = encodeTarget(cells[labelIndex]!, () => at(row, label.column));
    }
  }
  return { spec, train, validation, unlabelled: keys.filter(Number.isNaN).length };
}

/** A given spec must predict the profiled label with the same task (its classes may differ: unknown ones fail per row). */
function checkSameTarget(spec: PreprocessingSpec, label: NonNullable<TableProfile['label']>): void {
  if (spec.target.column !== label.column || spec.target.task !== label.task) {
    throw new FieldError(
      'model.from',
      `the version predicts "${spec.target.column}" (${spec.target.task}); the table's label is "${label.column}" (${label.task})`,
    );
  }
}

/**
 * Per row: its class index (classification), 0 (regression), or NaN when the label is missing.
 * Sized from the profile's row count (a JS array grown row by row would cost 2-3x transiently).
 */
async function splitKeys(
  table: TableSource,
  rows: number,
  column: string,
  classes: string[] | undefined,
): Promise<Float32Array> {
  const k = table.columns.indexOf(column);
  const index = new Map((classes ?? []).map((c, i) => [c, i]));
  const keys = new Float32Array(rows);
  let row = 0;
  for await (const batch of table.batches) {
    for (const cells of batch) {
      if (row === rows)
        throw new FieldError('file', `the table has more rows than its profile (${rows}); profile it again`);
      const cell = cells[k]!;
      keys[row++] = isMissing(cell) ? Number.NaN : classes ? (index.get(categoryKey(cell)) ?? Number.NaN) : 0;
    }
  }
  if (row !== rows) throw new FieldError('file', `the table has ${row} rows, its profile ${rows}; profile it again`);
  return keys;
}

/**
 * The training then the validation matrix as views of one buffer each for features and targets:
 * training needs them as one (TabularData's last rows are the validation split), and a copy into
 * a new buffer would double the peak memory of the largest thing a table becomes.
 */
function matrices(trainRows: number, validationRows: number, width: number): [Matrix, Matrix] {
  const features = new Float32Array((trainRows + validationRows) * width);
  const targets = new Float32Array(trainRows + validationRows);
  return [
    { rows: trainRows, features: features.subarray(0, trainRows * width), targets: targets.subarray(0, trainRows) },
    { rows: validationRows, features: features.subarray(trainRows * width), targets: targets.subarray(trainRows) },
  ];
}
