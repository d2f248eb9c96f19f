import { z } from 'zod';
import type { DatasetStore } from '@tq/storage';

/** The object kept beside a profiled CSV dataset (DatasetStore.writeExtra). */
export const ROW_INDEX_FILE = 'row-index.json';

/**
 * Where every `every`-th row of a CSV starts, so that an infer job's shards can each read only
 * their own byte range. Offsets come from the parser (csv-parse's record byte count), so a quoted
 * field with line breaks never splits a row; they count the BOM, as the stored bytes hold it.
 * starts[j] is the byte offset of data row every*(j+1)+1 (rows count from 1, the header aside).
 */
export const rowIndexSchema = z.object({
  every: z.number().int().min(1),
  rows: z.number().int().min(0),
  /** Bytes [0, headerEnd) are the header record (with its BOM and line break). */
  headerEnd: z.number().int().min(0),
  starts: z.array(z.number().int().min(0)),
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

  /** The index; a start past the last row (the table ends on a shard boundary) is no shard. */
  build(): RowIndex {
    const shards = Math.max(1, Math.ceil(this.rows / this.every));
    return { every: this.every, rows: this.rows, headerEnd: this.headerEnd, starts: this.starts.slice(0, shards - 1) };
  }
}

/** The dataset's row index; undefined when it has none (not a CSV, or profiled before indexes existed). */
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
