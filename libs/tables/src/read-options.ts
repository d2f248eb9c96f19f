/** How readTable reads a source (its own file: the readers take it, and readTable calls them). */
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
  /**
   * Rows that cannot be read (a CSV record with another number of cells than the header, a JSON
   * line that does not parse or is not an object) are yielded in their place, for the caller to
   * report per row (malformedReason), instead of ending the read with a FieldError naming the row.
   * For batch inference and profiling; training reads strictly.
   */
  keepMalformedRows?: boolean;
}
