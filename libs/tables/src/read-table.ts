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
  if (format === 'csv' && opts.columns !== undefined) {
    source.destroy();
    // A CSV range is read after its header's bytes (the header names the columns): a caller's mistake.
    return Promise.reject(new Error('ReadOptions.columns is for JSON Lines only'));
  }
  return format === 'csv' ? readCsv(source, all, opts) : readJsonl(source, all, opts);
}

export interface ReadOptions {
  /**
   * Called as the reader ends each record, in order, with the data rows ended so far (0: a CSV's
   * header) and the byte offset right after the record (its line break included, a BOM counted):
   * where the next row starts. A row index for seeking is built from these. CSV: the offsets come
   * from the parser, so quoted line breaks inside a row are no row boundary. JSON Lines: no call
   * for 0 (no header); blank lines are skipped as rows are, so an offset may be followed by blank
   * lines before the next record. Not called for a JSON array (read as a whole, never sharded).
   */
  onRecordEnd?: (rows: number, bytes: number) => void;
  /**
   * JSON Lines only: the table's columns, known beforehand (a shard reading its byte range of a
   * dataset whose profile recorded them). The first line read is then a data row, not the source
   * of the columns; a record with another key is the error a whole-file read gives for it.
   */
  columns?: readonly string[];
  /**
   * The row number of the first data row read (default 1), so the errors of a range (a shard:
   * a CSV's header then its range, or a JSON Lines range) name rows of the whole table.
   */
  firstRow?: number;
}
