import type { Readable } from 'node:stream';
import { FieldError, TooLargeError } from '@tq/contracts';
import { markMalformed } from './malformed-rows';
import type { Cell } from './cells';
import { checkHeader, checkRowCount } from './header';
import { isRecord, toCells } from './json-records';
import { at, type TableLimits } from './limits';
import { readJsonArray } from './read-json-array';
import { sniffJson } from './sniff-json';
import type { ReadOptions } from './read-options';
import type { TableSource } from './table-source';

const OPEN_BRACKET = 0x5b;

/**
 * Reads a JSON table: a JSON array of objects when the first byte (after a BOM and whitespace) is
 * `[`, else JSON Lines. A failure before the header is known destroys the source. `opts.columns`
 * and `opts.firstRow` read a byte range of JSON Lines (a shard), see ReadOptions; `onRecordEnd`
 * is called for JSON Lines only (a JSON array is read as a whole, never sharded).
 */
export async function readJsonl(source: Readable, limits: TableLimits, opts: ReadOptions = {}): Promise<TableSource> {
  try {
    const { first, bytes, skipped } = await sniffJson(source);
    if (first !== OPEN_BRACKET) return await readJsonLines(bytes, skipped, limits, opts);
    // Columns known beforehand come from a JSON Lines row index: these bytes are not what was indexed.
    if (opts.columns) throw new Error('a JSON array cannot be read as a range of JSON Lines (opts.columns)');
    return await readJsonArray(bytes, limits);
  } catch (err) {
    source.destroy();
    throw err;
  }
}

/**
 * JSON Lines: one object per line, scalar values (null is missing). The first record's keys
 * are the columns (unless `opts.columns` gives them: the first line is then a data row); a later
 * record may omit keys (missing) but not add new ones. Lines are cut from the byte stream by hand
 * so one line can never take more than `maxRecordBytes`. `skipped`: the bytes the sniff dropped
 * (BOM, leading blanks), so that onRecordEnd's offsets are the source's.
 */
async function readJsonLines(
  source: AsyncIterable<Buffer>,
  skipped: number,
  limits: TableLimits,
  opts: ReadOptions,
): Promise<TableSource> {
  const firstRow = opts.firstRow ?? 1;
  const lines = splitLines(source, skipped, firstRow, limits)[Symbol.asyncIterator]();
  if (opts.columns) {
    const columns = checkHeader(opts.columns, limits);
    return { columns, batches: rows({ lines: [], ends: [] }, lines, columns, firstRow, limits, opts) };
  }
  let first = await lines.next();
  while (!first.done && first.value.lines.length === 0) first = await lines.next();
  if (first.done) throw new FieldError('file', 'the JSONL file has no records');
  const columns = checkHeader(Object.keys(parseLine(first.value.lines[0]!, firstRow)), limits);
  return { columns, batches: rows(first.value, lines, columns, firstRow, limits, opts) };
}

async function* rows(
  first: Lines,
  lines: AsyncIterator<Lines>,
  columns: readonly string[],
  firstRow: number,
  limits: TableLimits,
  opts: ReadOptions,
): AsyncGenerator<Cell[][]> {
  const index = new Map(columns.map((c, i) => [c, i]));
  const onRecordEnd = opts.onRecordEnd;
  // Rows are numbered in the whole table (firstRow), records counted in what this read saw (onRecordEnd).
  let row = firstRow - 1;
  let records = 0;
  const read = (bytes: Buffer): Cell[] => {
    if (!opts.keepMalformedRows) return toCells(parseLine(bytes, row), row, index);
    try {
      return toCells(parseLine(bytes, row), row, index);
    } catch (err) {
      if (!(err instanceof FieldError) || err instanceof TooLargeError) throw err;
      // The row is the caller's to name; the column (a key outside the columns) stays in the reason.
      const column = /column "(.*)"$/.exec(err.field)?.[1];
      return markMalformed([], column === undefined ? err.reason : `column "${column}": ${err.reason}`);
    }
  };
  const parse = (batch: Lines) =>
    batch.lines.map((bytes, k) => {
      row++;
      const cells = read(bytes);
      onRecordEnd?.(++records, batch.ends[k]!);
      return cells;
    });
  try {
    if (first.lines.length > 0) yield parse(first);
    for (let line = await lines.next(); !line.done; line = await lines.next()) {
      const batch = parse(line.value);
      checkRowCount(row, limits);
      yield batch;
    }
  } finally {
    // Stops reading (and destroys the source) when the caller stops early.
    await lines.return?.();
  }
}

function tooLong(row: number, limits: TableLimits): TooLargeError {
  return new TooLargeError(at(row), `a line is longer than ${limits.maxRecordBytes} bytes`);
}

/** Only spaces, tabs and CR (or nothing). */
function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) if (b !== 32 && b !== 9 && b !== 13) return false;
  return true;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function parseLine(bytes: Buffer, row: number): Record<string, unknown> {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    throw new FieldError(at(row), 'invalid UTF-8; save the file as UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FieldError(at(row), `not valid JSON: ${(err as Error).message}`);
  }
  if (!isRecord(value)) throw new FieldError(at(row), 'each line must be a JSON object');
  return value;
}

/** A chunk's complete non-blank lines, and for each the source offset right after it (its LF included). */
interface Lines {
  lines: Buffer[];
  ends: number[];
}

/**
 * Per chunk read, its complete non-blank lines as byte buffers, none longer than maxRecordBytes.
 * `offset`: where the first byte of `source` is in the file; `firstRow`: the first line's row number.
 */
async function* splitLines(
  source: AsyncIterable<Buffer>,
  offset: number,
  firstRow: number,
  limits: TableLimits,
): AsyncGenerator<Lines> {
  let parts: Buffer[] = [];
  let held = 0;
  let row = firstRow;
  let pos = offset;
  for await (const chunk of source) {
    const lines: Buffer[] = [];
    const ends: number[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; start = nl + 1, nl = chunk.indexOf(10, start)) {
      const line = parts.length ? Buffer.concat([...parts, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
      parts = [];
      held = 0;
      if (line.length > limits.maxRecordBytes) throw tooLong(row + lines.length, limits);
      if (!isBlank(line)) {
        lines.push(line);
        ends.push(pos + nl + 1);
      }
    }
    row += lines.length;
    held += chunk.length - start;
    pos += chunk.length;
    if (held > limits.maxRecordBytes) throw tooLong(row, limits);
    if (start < chunk.length) parts.push(chunk.subarray(start));
    yield { lines, ends };
  }
  const last = Buffer.concat(parts);
  if (!isBlank(last)) yield { lines: [last], ends: [pos] };
}
