import type { Cell } from './cells';

/** A table being read: its column names, then its rows (each one cell per column, in order). */
export interface TableSource {
  columns: readonly string[];
  rows: AsyncIterable<Cell[]>;
}

export type TableFormat = 'csv' | 'jsonl';
