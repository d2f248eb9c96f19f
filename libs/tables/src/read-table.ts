import type { Readable } from 'node:stream';
import { DEFAULT_TABLE_LIMITS, type TableLimits } from './limits';
import { readCsv } from './read-csv';
import { readJsonl } from './read-jsonl';
import type { ReadOptions, TableFormat, TableSource } from './table-source';

/**
 * Opens a CSV or JSONL byte stream as a table: resolves once the header (first record) is read,
 * then rows stream with backpressure. Errors are FieldError (400) or TooLargeError (413) naming the
 * row and column; abandoning the rows iterator early (break) destroys the source.
 */
export function readTable(
  source: Readable,
  format: TableFormat,
  limits: Partial<TableLimits> = {},
  opts: ReadOptions = {},
): Promise<TableSource> {
  const all = { ...DEFAULT_TABLE_LIMITS, ...limits };
  return format === 'csv' ? readCsv(source, all, opts) : readJsonl(source, all);
}
