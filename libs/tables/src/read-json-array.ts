import { isUtf8 } from 'node:buffer';
import { jsonParser, type Token } from 'stream-json/core/parser.js';
import streamArray from 'stream-json/core/streamers/stream-array.js';
import { getManyValues, isMany, none, type Many } from 'stream-chain/defs.js';
import { FieldError, TooLargeError } from '@tq/contracts';
import type { Cell } from './cells';
import { checkHeader, checkRowCount } from './header';
import { isRecord, toCells } from './json-records';
import { at, type TableLimits } from './limits';
import type { TableSource } from './table-source';
import { completeLength, firstInvalid } from './utf8-guard';

/**
 * Bytes handed to the parser at once. An element's size is checked between slices, so one element
 * can take at most `maxRecordBytes` plus a slice before it is refused.
 */
const SLICE = 16 * 1024;
/** Rows per batch at most (a batch also ends with each source chunk). */
const BATCH = 256;

/**
 * Reads a JSON array of objects (`[{...}, {...}]`, e.g. vega-datasets' tables as they ship) with
 * the same rules as JSON Lines: the first object's keys are the columns, later ones may omit keys
 * but not add any, values are scalars or null. stream-json parses the text piecewise, so memory
 * holds one element in progress and the rows of one source chunk, never the whole array.
 * `bytes` starts at the `[` (see sniff-json.ts).
 */
export async function readJsonArray(bytes: AsyncGenerator<Buffer>, limits: TableLimits): Promise<TableSource> {
  const elements = readElements(bytes, limits);
  const first = await elements.next();
  if (first.done) throw new FieldError('file', 'the JSON array has no records');
  const columns = checkHeader(Object.keys(asRecord(first.value[0], 1)), limits);
  return { columns, batches: rows(first.value, elements, columns, limits) };
}

async function* rows(
  first: unknown[],
  elements: AsyncGenerator<unknown[]>,
  columns: readonly string[],
  limits: TableLimits,
): AsyncGenerator<Cell[][]> {
  const index = new Map(columns.map((c, i) => [c, i]));
  let row = 0;
  const cells = (batch: unknown[]) =>
    batch.map((value) => {
      row++;
      return toCells(asRecord(value, row), row, index);
    });
  try {
    yield cells(first);
    for (let next = await elements.next(); !next.done; next = await elements.next()) {
      const batch = cells(next.value);
      checkRowCount(row, limits);
      yield batch;
    }
  } finally {
    // Stops reading (and destroys the source) when the caller stops early.
    await elements.return(undefined);
  }
}

function asRecord(value: unknown, row: number): Record<string, unknown> {
  if (!isRecord(value)) throw new FieldError(at(row), 'each element of the JSON array must be an object');
  return value;
}

/** The array's elements as parsed, in batches of at most BATCH, one or more per source chunk. */
async function* readElements(bytes: AsyncGenerator<Buffer>, limits: TableLimits): AsyncGenerator<unknown[]> {
  const parser = new ArrayParser(limits);
  try {
    for await (const chunk of bytes) {
      for (let i = 0; i < chunk.length; i += SLICE) {
        parser.write(chunk.subarray(i, i + SLICE));
        while (parser.elements.length >= BATCH) yield parser.take(BATCH);
      }
      if (parser.elements.length > 0) yield parser.take();
    }
    parser.end();
    if (parser.elements.length > 0) yield parser.take();
  } finally {
    await bytes.return(undefined);
  }
}

/**
 * stream-json's parser and array streamer called directly (they are plain synchronous functions):
 * text in, tokens, then whole elements out. Counting the bytes written since the last element
 * ended bounds the one being assembled; invalid UTF-8 is caught here, before decoding, so the
 * error names the row it is in rather than a U+FFFD turning up in a value.
 */
class ArrayParser {
  elements: unknown[] = [];
  /** Flushed by writing `none` (stream-chain's protocol; its typing lists only text). */
  private readonly tokens = jsonParser({ streamValues: false }) as (
    text: string | typeof none,
  ) => Many<Token> | typeof none;
  private readonly streamer = streamArray();
  /** Elements completed so far (taken or not): the row in progress is `done + 1`. */
  private done = 0;
  /** Bytes written since an element last ended. */
  private pending = 0;
  /** Nesting (arrays and objects) of the token stream: back to 0 once the closing `]` was read. */
  private depth = 0;
  private closed = false;
  /** The end of the previous slice when it stopped inside a multi-byte character. */
  private carry: Buffer | undefined;

  constructor(private readonly limits: TableLimits) {}

  write(slice: Buffer): void {
    const bytes = this.carry ? Buffer.concat([this.carry, slice]) : slice;
    const end = completeLength(bytes);
    this.carry = end < bytes.length ? Buffer.from(bytes.subarray(end)) : undefined;
    const body = bytes.subarray(0, end);
    const before = this.done;
    if (isUtf8(body)) this.parse(body.toString('utf8'));
    else {
      // Parse what comes before the bad byte first: the error then names the row it is in.
      this.parse(body.subarray(0, firstInvalid(body)).toString('utf8'));
      throw this.invalidUtf8();
    }
    this.pending = this.done > before ? 0 : this.pending + slice.length;
    if (this.pending > this.limits.maxRecordBytes)
      throw new TooLargeError(this.where(), `an element is longer than ${this.limits.maxRecordBytes} bytes`);
  }

  end(): void {
    if (this.carry) throw this.invalidUtf8();
    const endsEarly = () => new FieldError('file', `the file ends before the JSON array's closing ]`);
    try {
      this.parse(none);
    } catch (err) {
      throw this.closed ? err : endsEarly();
    }
    if (!this.closed) throw endsEarly();
  }

  /** The elements parsed and not yet taken, the first `max` of them when given. */
  take(max?: number): unknown[] {
    if (max !== undefined && max < this.elements.length) return this.elements.splice(0, max);
    const out = this.elements;
    this.elements = [];
    return out;
  }

  private parse(text: string | typeof none): void {
    let tokens;
    try {
      tokens = this.tokens(text);
    } catch (err) {
      const where = this.closed ? 'file' : this.where();
      const after = this.closed ? ' after the closing ] of the array' : '';
      throw new FieldError(where, `not valid JSON${after}: ${(err as Error).message}`);
    }
    if (tokens === none) return;
    for (const token of getManyValues(tokens)) {
      if (token.name === 'startArray' || token.name === 'startObject') this.depth++;
      else if (token.name === 'endArray' || token.name === 'endObject') {
        if (--this.depth === 0) this.closed = true;
      }
      const out = this.streamer(token);
      if (out === none) continue;
      for (const item of isMany(out) ? getManyValues(out) : [out]) {
        this.elements.push(item.value);
        this.done++;
      }
    }
  }

  private where(): string {
    return at(this.done + 1);
  }

  private invalidUtf8(): FieldError {
    return new FieldError(this.where(), 'invalid UTF-8; save the file as UTF-8');
  }
}
