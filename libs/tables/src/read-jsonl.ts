import type { Readable } from 'node:stream';
import { FieldError, TooLargeError } from '@tq/contracts';
import type { Cell } from './cells';
import { checkHeader, checkRowCount } from './header';
import { at, type TableLimits } from './limits';
import type { TableSource } from './table-source';

/**
 * Reads JSON Lines: one object per line, scalar values (null is missing). The first record's keys
 * are the columns; a later record may omit keys (missing) but not add new ones. Lines are cut
 * from the byte stream by hand so one line can never take more than `maxRecordBytes`.
 */
export async function readJsonl(source: Readable, limits: TableLimits): Promise<TableSource> {
  const lines = splitLines(source, limits)[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new FieldError('file', 'the JSONL file has no records');
  const record = parseLine(first.value.bytes, 1);
  const columns = checkHeader(Object.keys(record), limits);
  return { columns, rows: rows(record, lines, columns, limits) };
}

async function* rows(first: Record<string, unknown>, lines: AsyncIterator<{ bytes: Buffer }>, columns: readonly string[], limits: TableLimits): AsyncGenerator<Cell[]> {
  const index = new Map(columns.map((c, i) => [c, i]));
  try {
    yield toCells(first, 1, index);
    for (let row = 2, line = await lines.next(); !line.done; row++, line = await lines.next()) {
      checkRowCount(row, limits);
      yield toCells(parseLine(line.value.bytes, row), row, index);
    }
  } finally {
    // Stops reading (and destroys the source) when the caller stops early.
    await lines.return?.();
  }
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
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FieldError(at(row), 'each line must be a JSON object');
  return value as Record<string, unknown>;
}

function toCells(record: Record<string, unknown>, row: number, index: ReadonlyMap<string, number>): Cell[] {
  const cells: Cell[] = new Array<Cell>(index.size).fill(null);
  for (const key in record) {
    const k = index.get(key);
    if (k === undefined) throw new FieldError(at(row, key), 'unknown column (not in the first record)');
    const v = record[key];
    if (v !== null && typeof v === 'object') throw new FieldError(at(row, key), 'must be a number, string, boolean or null');
    cells[k] = v as Cell;
  }
  return cells;
}

/** Non-empty lines as byte buffers, none longer than maxRecordBytes. */
async function* splitLines(source: Readable, limits: TableLimits): AsyncGenerator<{ bytes: Buffer }> {
  let parts: Buffer[] = [];
  let held = 0;
  let row = 1;
  const emit = (bytes: Buffer) => (isBlank(bytes) ? undefined : { bytes });
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; start = nl + 1, nl = chunk.indexOf(10, start)) {
      const line = parts.length ? Buffer.concat([...parts, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
      parts = [];
      held = 0;
      const out = emit(line);
      if (out) {
        yield out;
        row++;
      }
    }
    held += chunk.length - start;
    if (held > limits.maxRecordBytes) throw new TooLargeError(at(row), `a line is longer than ${limits.maxRecordBytes} bytes`);
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  const last = emit(Buffer.concat(parts));
  if (last) yield last;
}
