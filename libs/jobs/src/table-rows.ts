import type { Readable } from 'node:stream';
import { FieldError, type PreprocessingSpec, type RowError } from '@tq/contracts';
import {
  malformedReason,
  malformedRowError,
  readTable,
  RowEncoder,
  type TableFormat,
  type TableLimits,
  type TableSource,
} from '@tq/tables';

/** Where an uploaded table's bytes come from: DatasetStore.openSource. */
export interface TableSources {
  openSource(id: string, range?: { start: number; end: number }): Promise<{ format: TableFormat; stream: Readable }>;
}

/** Consecutive rows of a table as the network's input: rows × spec.width floats. */
export interface EncodedChunk {
  features: Float32Array;
  rows: number;
}

/**
 * Streams a table's rows through RowEncoder with a model's fitted preprocessing, `chunkRows` rows at
 * a time (the last chunk shorter), in table order. The label and ignored columns may be present or
 * not; a missing input column is a FieldError naming "columns", a bad cell one naming its row and
 * column. `unknown` of the returned encoder counts unseen categories as the rows go.
 */
export function encodeTable(
  table: TableSource,
  spec: PreprocessingSpec,
  chunkRows: number,
): { encoder: RowEncoder; chunks: AsyncGenerator<EncodedChunk> } {
  const encoder = new RowEncoder(spec, table.columns);
  return { encoder, chunks: encodeChunks(table, encoder, chunkRows) };
}

async function* encodeChunks(table: TableSource, encoder: RowEncoder, chunkRows: number): AsyncGenerator<EncodedChunk> {
  const width = encoder.spec.width;
  let chunk = new Float32Array(chunkRows * width);
  let filled = 0;
  let row = 0;
  for await (const batch of table.batches) {
    for (const cells of batch) {
      encoder.encode(cells, chunk, filled * width, ++row);
      if (++filled === chunkRows) {
        yield { features: chunk, rows: filled };
        chunk = new Float32Array(chunkRows * width);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield { features: chunk.subarray(0, filled * width), rows: filled };
}

/**
 * Opens uploaded dataset `id` as a table encoded with `spec`. Errors about the table (a missing
 * column, a bad cell, a limit) are re-raised naming `field` — the request's field — with the
 * table's own place (row, column) in the message.
 */
export async function openEncodedTable(
  sources: TableSources,
  id: string,
  spec: PreprocessingSpec,
  opts: {
    chunkRows: number;
    field: string;
    limits?: Partial<TableLimits> | undefined;
    /** Only these bytes (e.g. a CSV's header record, to check its columns). */
    range?: { start: number; end: number } | undefined;
  },
): Promise<{ encoder: RowEncoder; chunks: AsyncGenerator<EncodedChunk>; close: () => void }> {
  const { format, stream } = await (opts.range ? sources.openSource(id, opts.range) : sources.openSource(id));
  try {
    const { encoder, chunks } = encodeTable(await readTable(stream, format, opts.limits), spec, opts.chunkRows);
    // close(): for a caller that stops before reading any row (a generator never started has no finally to run).
    return { encoder, chunks: renamed(chunks, opts.field, id), close: () => stream.destroy() };
  } catch (err) {
    stream.destroy();
    throw rename(err, opts.field, id);
  }
}

async function* renamed<T>(chunks: AsyncGenerator<T>, field: string, id: string): AsyncGenerator<T> {
  try {
    yield* chunks;
  } catch (err) {
    throw rename(err, field, id);
  }
}

function rename(err: unknown, field: string, id: string): unknown {
  if (!(err instanceof FieldError) || err.constructor !== FieldError) return err;
  return new FieldError(field, `dataset "${id}", ${err.field}: ${err.reason}`);
}

/** A chunk whose rows may have failed: `failed` maps a row's place in the chunk to its error. */
export interface LenientChunk extends EncodedChunk {
  failed: Map<number, RowError>;
}

/**
 * As encodeTable, but a row whose cells cannot be encoded (or that could not be read: a table read
 * with keepMalformedRows) is not the end of the table: it becomes
 * a RowError (row numbered from `firstRow`, its column) and zeros in the chunk, so the rows after
 * it keep their places. A missing input column still fails at once (no row could be read).
 */
export async function* encodeLenient(
  table: TableSource,
  spec: PreprocessingSpec,
  chunkRows: number,
  firstRow: number,
): AsyncGenerator<LenientChunk> {
  const encoder = new RowEncoder(spec, table.columns);
  const width = spec.width;
  const columns = table.columns.length;
  let chunk = { features: new Float32Array(chunkRows * width), rows: 0, failed: new Map<number, RowError>() };
  let row = firstRow - 1;
  for await (const batch of table.batches) {
    for (const cells of batch) {
      row++;
      const malformed = malformedReason(cells, columns);
      try {
        if (malformed !== undefined) throw malformedRowError(row, malformed);
        encoder.encode(cells, chunk.features, chunk.rows * width, row);
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        chunk.features.fill(0, chunk.rows * width, (chunk.rows + 1) * width);
        chunk.failed.set(chunk.rows, rowErrorOf(row, err));
      }
      if (++chunk.rows === chunkRows) {
        yield chunk;
        chunk = { features: new Float32Array(chunkRows * width), rows: 0, failed: new Map() };
      }
    }
  }
  if (chunk.rows > 0) yield { ...chunk, features: chunk.features.subarray(0, chunk.rows * width) };
}

/** The encoders name the place as `row n, column "c"` (limits.ts at()): the column is taken from there. */
function rowErrorOf(row: number, err: FieldError): RowError {
  const column = /column "(.*)"$/.exec(err.field)?.[1];
  return { row, ...(column === undefined ? {} : { column }), message: err.reason };
}
