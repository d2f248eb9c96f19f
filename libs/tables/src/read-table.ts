import type { Readable } from 'node:stream';
import { DEFAULT_TABLE_LIMITS, type TableLimits } from './limits';
import { readCsv } from './read-csv';
import { readJsonl } from './read-jsonl';
import type { TableFormat, TableSource } from './table-source';

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

export interface ReadOptions {
  /**
   * CSV only: called as the parser ends each record, in order, with the data rows ended so far (0:
   * the header) and the byte offset right after the record (its line break included, a BOM
   * counted): where the next row starts. A row index for seeking is built from these (the offsets
   * come from the parser, so quoted line breaks inside a row are no row boundary).
   */
  onRecordEnd?: (rows: number, bytes: number) => void;
}
