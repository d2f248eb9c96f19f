import type { TabularData } from './tabular-data';

/** Rows [start, end) as a view (no copy) sharing the parent's arrays. */
export function sliceRows(data: TabularData, start: number, end: number): TabularData {
  const f = data.featureCount;
  return { ...data, x: data.x.subarray(start * f, end * f), y: data.y.subarray(start, end), rows: end - start };
}

/**
 * Copies the rows `order[from .. from+count)` into fresh contiguous arrays: one batch, built
 * with typed-array copies, never one tensor per sample. Fresh arrays each call because the cpu
 * backend keeps a reference to the array a tensor was made from.
 */
export function gatherBatch(
  data: TabularData,
  order: ArrayLike<number>,
  from: number,
  count: number,
): { x: Float32Array; y: Int32Array | Float32Array } {
  const f = data.featureCount;
  const x = new Float32Array(count * f);
  const y = data.y instanceof Float32Array ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const r = order[from + i]!;
    x.set(data.x.subarray(r * f, (r + 1) * f), i * f);
    y[i] = data.y[r]!;
  }
  return { x, y };
}

/**
 * Keras's validationSplit: the LAST fraction of the rows, before any shuffling, is held out.
 * Returns the index of the first validation row (rows when there is none).
 */
export function validationStart(rows: number, validationSplit: number): number {
  return validationSplit > 0 ? Math.floor(rows * (1 - validationSplit)) : rows;
}

/**
 * Where the validation rows start: a prepared table's own split (its last `validationRows`,
 * stratified when it was prepared), else Keras's validationSplit of the rows.
 */
export function trainRowCount(data: { rows: number; validationRows?: number }, validationSplit: number): number {
  return data.validationRows !== undefined
    ? data.rows - data.validationRows
    : validationStart(data.rows, validationSplit);
}

/** The dtype of the label tensor a batch of `data` makes: class indices or regression targets. */
export function labelDtype(data: { task: 'classification' | 'regression' }): 'int32' | 'float32' {
  return data.task === 'regression' ? 'float32' : 'int32';
}
