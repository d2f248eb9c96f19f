/**
 * Bounds on what a reader accepts; over any of them the read stops with a TooLargeError (413).
 * The caller passes values from @tq/config; these defaults are for tools and tests.
 */
export interface TableLimits {
  /** Columns in the header (or the first JSONL record). */
  maxColumns: number;
  /** Data rows (the header is not counted). */
  maxRows: number;
  /** Bytes of one record: bounds the memory a single malformed line (or unclosed quote) can take. */
  maxRecordBytes: number;
}

export const DEFAULT_TABLE_LIMITS: Readonly<TableLimits> = {
  maxColumns: 2_000,
  maxRows: 2_000_000,
  maxRecordBytes: 1 << 20,
};

/** How errors name a place in the table: data rows count from 1, the header is not a row. */
export function at(row: number, column?: string): string {
  return column === undefined ? `row ${row}` : `row ${row}, column "${column}"`;
}
