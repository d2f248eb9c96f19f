import type { CsvDelimiter } from '@tq/contracts';
import type { Cell } from './cells';

/**
 * A table being read: its column names, then its rows (each one cell per column, in order) in
 * batches: one await per batch rather than per row, which is a good part of a profile's cost.
 */
export interface TableSource {
  columns: readonly string[];
  /** A CSV's field separator (read from its header line). */
  delimiter?: CsvDelimiter;
  /** A CSV not separated by commas: the cells read so far as numbers with a decimal comma (`1,5`). */
  decimalCommas?: () => number;
  batches: AsyncIterable<Cell[][]>;
}

/** The rows one by one, for callers to whom the cost of an await per row does not matter. */
export async function* rowsOf(table: TableSource): AsyncGenerator<Cell[]> {
  for await (const batch of table.batches) yield* batch;
}

export type TableFormat = 'csv' | 'jsonl';

/** What a long read reports and obeys: rows read so far (all passes), and cancellation between batches. */
export interface TableWatch {
  signal?: AbortSignal | undefined;
  onRows?: ((rowsRead: number) => void | Promise<void>) | undefined;
}

/** The same table, checking `watch.signal` before each batch (throwing its reason) and counting rows into `onRows`. */
export function watchTable(table: TableSource, watch: TableWatch, counter = { rows: 0 }): TableSource {
  return { columns: table.columns, batches: watched(table.batches, watch, counter) };
}

async function* watched(batches: AsyncIterable<Cell[][]>, watch: TableWatch, counter: { rows: number }) {
  for await (const batch of batches) {
    if (watch.signal?.aborted) throw watch.signal.reason;
    counter.rows += batch.length;
    await watch.onRows?.(counter.rows);
    yield batch;
  }
}
