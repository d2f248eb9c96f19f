import { z } from 'zod';
import type { DatasetStore } from '@tq/storage';

/** The object kept beside a profiled CSV or JSON Lines dataset (DatasetStore.writeExtra). */
export const ROW_INDEX_FILE = 'row-index.json';

/**
 * Where every `every`-th row of a CSV or JSON Lines table starts, so that an infer job's shards can
 * each read only their own byte range. Offsets come from the reader (csv-parse's record byte count,
 * the JSON Lines reader's line ends), so a quoted field with line breaks never splits a row; they
 * count the BOM, as the stored bytes hold it. starts[j] is the byte offset right after data row
 * every*(j+1) (rows count from 1, a CSV's header aside): blank lines may come before the next row,
 * and its reader skips them. A JSON array has no index (one shard).
 */
export const rowIndexSchema = z.object({
  every: z.number().int().min(1),
  rows: z.number().int().min(0),
  /** Bytes [0, headerEnd) are a CSV's header record (with its BOM and line break); 0 for JSON Lines. */
  headerEnd: z.number().int().min(0),
  starts: z.array(z.number().int().min(0)),
  /**
   * JSON Lines: the table's columns (its first record's keys). A shard reads its range with them
   * given, since its own first record may omit optional keys.
   */
  columns: z.array(z.string()).optional(),
});
export type RowIndex = z.infer<typeof rowIndexSchema>;

/** Builds a RowIndex from readTable's onRecordEnd calls, in bounded memory (one number per `every` rows). */
export class RowIndexBuilder {
  private headerEnd = 0;
  private readonly starts: number[] = [];
  private rows = 0;

  constructor(private readonly every: number) {}

  /** For ReadOptions.onRecordEnd. */
  readonly onRecordEnd = (rows: number, bytes: number): void => {
    this.rows = rows;
    if (rows === 0) this.headerEnd = bytes;
    else if (rows % this.every === 0) this.starts.push(bytes);
  };

  /**
   * The index (with `columns` for JSON Lines); a start past the last row (the table ends on a
   * shard boundary) is no shard.
   */
  build(columns?: readonly string[]): RowIndex {
    const shards = Math.max(1, Math.ceil(this.rows / this.every));
    const starts = this.starts.slice(0, shards - 1);
    return {
      every: this.every,
      rows: this.rows,
      headerEnd: this.headerEnd,
      starts,
      ...(columns ? { columns: [...columns] } : {}),
    };
  }
}

/** The dataset's row index; undefined when it has none (a JSON array, or profiled before indexes existed). */
export async function readRowIndex(
  datasets: Pick<DatasetStore, 'readExtra'>,
  id: string,
): Promise<RowIndex | undefined> {
  const bytes = await datasets.readExtra(id, ROW_INDEX_FILE);
  if (bytes === undefined) return undefined;
  const parsed = rowIndexSchema.safeParse(JSON.parse(bytes.toString('utf8')));
  if (!parsed.success) throw new Error(`dataset "${id}" has a corrupt ${ROW_INDEX_FILE}`);
  return parsed.data;
}

/** One shard's rows and bytes. */
export interface ShardPlan {
  firstRow: number;
  rows: number;
  range?: { start: number; end?: number };
  headerEnd?: number;
}

/** A table's shards: by its row index, or the whole file as one shard when it has none. */
export function planShards(rows: number, index: RowIndex | undefined): ShardPlan[] {
  if (!index || index.rows !== rows || rows === 0) return [{ firstRow: 1, rows }];
  const starts = [index.headerEnd, ...index.starts];
  return starts.map((start, j) => {
    const next = starts[j + 1];
    const firstRow = j * index.every + 1;
    return {
      firstRow,
      rows: Math.min(index.every, rows - firstRow + 1),
      range: next === undefined ? { start } : { start, end: next - 1 },
      headerEnd: index.headerEnd,
    };
  });
}
