import type { DatasetUploadFields } from '@tq/contracts';
import type { TabularData } from './tabular-data';
import { CsvSyntaxError, forEachCsvRow } from './csv';
import { FieldError } from '@tq/contracts';

/** A client mistake in an uploaded dataset: `field` names where ("labelColumn", `row 17, column "x3"`). */
export class DatasetParseError extends FieldError {}

/** Plain decimal numbers only: Number() would also take "0x1f", "Infinity" and "" (as 0). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const naturalOrder = new Intl.Collator('en', { numeric: true }).compare;

/**
 * Parses an uploaded CSV (header row first) or JSONL (one JSON object per line) into flat float32
 * rows and int32 class indices. Rows are numbered from 1, counting data rows only (not the CSV header
 * or blank lines). Labels are strings or numbers; the class list is the distinct labels in natural
 * order ("2" < "10"), so integer labels 0..k-1 keep their value as index. Feature columns are
 * `fields.featureColumns` (comma-separated) or every column but the label, in file order.
 */
export function parseDatasetUpload(
  bytes: Buffer,
  format: 'csv' | 'jsonl',
  fields: DatasetUploadFields,
): TabularData & { y: Int32Array } {
  const text = bytes.toString('utf8');
  const rows = format === 'csv' ? csvRows(text) : jsonlRows(text);
  return toTabular(rows, fields);
}

/**
 * A parser hands over its column list once (`onColumns`, before any row), then each row as a
 * lookup by column name, as it reads: nothing but the numbers is kept.
 */
type Scan = (
  onColumns: (columns: string[]) => void,
  onRow: (get: (column: string) => unknown, row: number) => void,
) => void;

function csvRows(text: string): Scan {
  return (onColumns, onRow) => {
    let width = 0;
    let position = new Map<string, number>();
    try {
      forEachCsvRow(text, (cells, index) => {
        if (index === 0) {
          const header = cells.map((c) => c.trim());
          const dup = header.find((c, i) => header.indexOf(c) !== i);
          if (dup !== undefined) throw new DatasetParseError('header', `column "${dup}" appears twice`);
          width = header.length;
          position = new Map(header.map((c, i) => [c, i]));
          onColumns(header);
        } else if (cells.length !== width) {
          throw new DatasetParseError(`row ${index}`, `has ${cells.length} cells, the header has ${width}`);
        } else {
          onRow((c) => cells[position.get(c)!], index);
        }
      });
    } catch (err) {
      if (err instanceof CsvSyntaxError)
        throw new DatasetParseError(err.rowIndex === 0 ? 'header' : `row ${err.rowIndex}`, err.message);
      throw err;
    }
    if (width === 0) throw new DatasetParseError('file', 'is empty: a CSV upload needs a header row');
  };
}

function jsonlRows(text: string): Scan {
  return (onColumns, onRow) => {
    let row = 0;
    for (let start = 0; start < text.length;) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      const line = text.slice(start, end);
      start = end + 1;
      if (line.trim() === '') continue;
      row++;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new DatasetParseError(`row ${row}`, 'is not valid JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new DatasetParseError(`row ${row}`, 'is not a JSON object');
      const o = value as Record<string, unknown>;
      // The first object's keys are the columns; extra keys in later rows are ignored, missing ones are errors.
      if (row === 1) onColumns(Object.keys(o));
      onRow((c) => (Object.hasOwn(o, c) ? o[c] : undefined), row);
    }
    if (row === 0) throw new DatasetParseError('file', 'has no rows');
  };
}

function toTabular(scan: Scan, fields: DatasetUploadFields): TabularData & { y: Int32Array } {
  const label = fields.labelColumn;
  if (label === undefined) throw new DatasetParseError('labelColumn', 'is required');
  let features: string[] = [];
  let values = new Float32Array(1 << 16);
  let used = 0;
  const labels: string[] = [];
  scan(
    (columns) => {
      features = resolveColumns(columns, fields);
    },
    (get, row) => {
      if (used + features.length > values.length) {
        // grow by doubling: amortised O(1) per value
        const bigger = new Float32Array(Math.max(values.length * 2, used + features.length));
        bigger.set(values);
        values = bigger;
      }
      for (const f of features) values[used++] = toNumber(get(f), row, f);
      labels.push(toLabel(get(label), row, label));
    },
  );
  if (labels.length === 0) throw new DatasetParseError('file', 'has a header but no data rows');
  const classes = [...new Set(labels)].sort((a, b) => naturalOrder(a, b) || (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(classes.map((c, i) => [c, i]));
  return {
    task: 'classification',
    x: values.slice(0, used),
    y: Int32Array.from(labels, (l) => index.get(l)!),
    rows: labels.length,
    featureCount: features.length,
    inputShape: [features.length],
    classes,
    featureColumns: features,
    labelColumn: label,
  };
}

function resolveColumns(columns: string[], fields: DatasetUploadFields): string[] {
  const label = fields.labelColumn;
  if (label === undefined) throw new DatasetParseError('labelColumn', 'is required');
  if (!columns.includes(label))
    throw new DatasetParseError('labelColumn', `no column "${label}"; columns are ${columns.join(', ')}`);
  const features =
    fields.featureColumns === undefined
      ? columns.filter((c) => c !== label)
      : fields.featureColumns
          .split(',')
          .map((c) => c.trim())
          .filter((c) => c !== '');
  if (features.length === 0) throw new DatasetParseError('featureColumns', 'names no feature column');
  for (const f of features) {
    if (!columns.includes(f)) throw new DatasetParseError('featureColumns', `no column "${f}"`);
    if (f === label) throw new DatasetParseError('featureColumns', `"${f}" is the label column`);
  }
  if (new Set(features).size !== features.length) throw new DatasetParseError('featureColumns', 'names a column twice');
  return features;
}

function toNumber(value: unknown, row: number, column: string): number {
  const where = `row ${row}, column "${column}"`;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new DatasetParseError(where, 'is not a finite number');
    return value;
  }
  if (typeof value !== 'string')
    throw new DatasetParseError(
      where,
      value === undefined ? 'is missing' : `is ${value === null ? 'null' : typeof value}, not a number`,
    );
  const s = value.trim();
  if (s === '') throw new DatasetParseError(where, 'is empty');
  if (!DECIMAL.test(s)) throw new DatasetParseError(where, `"${s.slice(0, 40)}" is not a number`);
  const n = Number(s);
  if (!Number.isFinite(n) || Math.abs(n) > 3.4e38)
    throw new DatasetParseError(where, `"${s.slice(0, 40)}" does not fit a float32`);
  return n;
}

function toLabel(value: unknown, row: number, column: string): string {
  const where = `row ${row}, column "${column}"`;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string')
    throw new DatasetParseError(where, value === undefined ? 'is missing' : 'must be a class name or index');
  const s = value.trim();
  if (s === '') throw new DatasetParseError(where, 'is empty');
  return s;
}
