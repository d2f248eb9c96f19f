import type { Readable } from 'node:stream';
import { DEFAULT_TABLE_LIMITS, type TableLimits } from './limits';
import { readCsv } from './read-csv';
import { readJsonl } from './read-jsonl';
import type { ReadOptions } from './read-options';
import type { TableFormat, TableSource } from './table-source';

export type { ReadOptions } from './read-options';

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
  if (format === 'csv' && opts.columns !== undefined) {
    source.destroy();
    // A CSV range is read after its header's bytes (the header names the columns): a caller's mistake.
    return Promise.reject(new Error('ReadOptions.columns is for JSON Lines only'));
  }
  return format === 'csv' ? readCsv(source, all, opts) : readJsonl(source, all, opts);
}
