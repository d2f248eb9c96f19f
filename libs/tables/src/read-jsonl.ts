import type { Readable } from 'node:stream';
import { FieldError, TooLargeError } from '@tq/contracts';
import type { Cell } from './cells';
import { checkHeader, checkRowCount } from './header';
import { isRecord, toCells } from './json-records';
import { at, type TableLimits } from './limits';
import { readJsonArray } from './read-json-array';
import { sniffJson } from './sniff-json';
import type { TableSource } from './table-source';

const OPEN_BRACKET = 0x5b;

/**
 * Reads a JSON table: a JSON array of objects when the first byte (after a BOM and whitespace) is
 * `[`, else JSON Lines. A failure before the header is known destroys the source.
 */
export async function readJsonl(source: Readable, limits: TableLimits): Promise<TableSource> {
  try {
    const { first, bytes } = await sniffJson(source);
    return first === OPEN_BRACKET ? await readJsonArray(bytes, limits) : await readJsonLines(bytes, limits);
  } catch (err) {
    source.destroy();
    throw err;
  }
}

/**
 * JSON Lines: one object per line, scalar values (null is missing). The first record's keys
 * are the columns; a later record may omit keys (missing) but not add new ones. Lines are cut
 * from the byte stream by hand so one line can never take more than `maxRecordBytes`.
 */
async function readJsonLines(source: AsyncIterable<Buffer>, limits: TableLimits): Promise<TableSource> {
  const lines = splitLines(source, limits)[Symbol.asyncIterator]();
  let first = await lines.next();
  while (!first.done && first.value.length === 0) first = await lines.next();
  if (first.done) throw new FieldError('file', 'the JSONL file has no records');
  const record = parseLine(first.value[0]!, 1);
  const columns = checkHeader(Object.keys(record), limits);
  return { columns, batches: rows(record, first.value.slice(1), lines, columns, limits) };
}

async function* rows(
  first: Record<string, unknown>,
  rest: Buffer[],
  lines: AsyncIterator<Buffer[]>,
  columns: readonly string[],
  limits: TableLimits,
): AsyncGenerator<Cell[][]> {
  const index = new Map(columns.map((c, i) => [c, i]));
  let row = 1;
  const parse = (batch: Buffer[]) =>
    batch.map((bytes) => {
      row++;
      return toCells(parseLine(bytes, row), row, index);
    });
  try {
    yield [toCells(first, 1, index), ...parse(rest)];
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

/** Per chunk read, its complete non-blank lines as byte buffers, none longer than maxRecordBytes. */
async function* splitLines(source: AsyncIterable<Buffer>, limits: TableLimits): AsyncGenerator<Buffer[]> {
  let parts: Buffer[] = [];
  let held = 0;
  let row = 1;
  for await (const chunk of source) {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; start = nl + 1, nl = chunk.indexOf(10, start)) {
      const line = parts.length ? Buffer.concat([...parts, chunk.subarray(start, nl)]) : chunk.subarray(start, nl);
      parts = [];
      held = 0;
      if (line.length > limits.maxRecordBytes) throw tooLong(row + lines.length, limits);
      if (!isBlank(line)) lines.push(line);
    }
    row += lines.length;
    held += chunk.length - start;
    if (held > limits.maxRecordBytes) throw tooLong(row, limits);
    if (start < chunk.length) parts.push(chunk.subarray(start));
    yield lines;
  }
  const last = Buffer.concat(parts);
  if (!isBlank(last)) yield [last];
}
