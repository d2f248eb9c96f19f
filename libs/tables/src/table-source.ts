import type { Cell } from './cells';

/**
 * A table being read: its column names, then its rows (each one cell per column, in order) in
 * batches: one await per batch rather than per row, which is a good part of a profile's cost.
 */
export interface TableSource {
  columns: readonly string[];
  batches: AsyncIterable<Cell[][]>;
}

/** The rows one by one, for callers to whom the cost of an await per row does not matter. */
export async function* rowsOf(table: TableSource): AsyncGenerator<Cell[]> {
  for await (const batch of table.batches) yield* batch;
}

export type TableFormat = 'csv' | 'jsonl';
