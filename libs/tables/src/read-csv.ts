import type { Readable, TransformOptions } from 'node:stream';
import { CsvError, parse, type Options } from 'csv-parse';
import { FieldError, TooLargeError } from '@tq/contracts';
import type { Cell } from './cells';
import { checkHeader, checkRowCount } from './header';
import { at, type TableLimits } from './limits';
import type { TableSource } from './table-source';
import type { ReadOptions } from './read-options';
import { Utf8Guard } from './utf8-guard';
import { malformedReason, malformedRowError } from './malformed-rows';
import { delimiterOf, withHeadLine } from './csv-delimiter';

/**
 * Records csv-parse may hold parsed ahead of the reader: memory is bounded by this times
 * maxRecordBytes (plus the stream buffers, 16 KiB each).
 */
const PARSED_AHEAD = 16;

/**
 * Reads a CSV from a byte stream with csv-parse: a BOM is dropped, quoted fields may hold commas,
 * quotes and newlines, the first record is the header. The field separator is the one the header
 * line holds most (delimiterOf: comma, semicolon, tab or pipe). Rows come back as strings (missing
 * cells are recognised later, see cells.ts). Memory is bounded by backpressure and `maxRecordBytes`.
 * As the parser runs ahead, an error in row n may surface before rows just before n are yielded
 * (even from this call, for a short file); it always names row n.
 */
export async function readCsv(input: Readable, limits: TableLimits, opts: ReadOptions = {}): Promise<TableSource> {
  const { head, stream: source } = await withHeadLine(input, limits.maxRecordBytes);
  const delimiter = delimiterOf(head);
  const guard = new Utf8Guard();
  // csv-parse hands the options on to its Transform; its Options type just does not list these.
  const options: Options & TransformOptions = {
    bom: true,
    delimiter,
    max_record_size: limits.maxRecordBytes,
    skip_empty_lines: true,
    // Checked per record here (rows()): a strict read names the row, a lenient one keeps it.
    relax_column_count: true,
    readableHighWaterMark: PARSED_AHEAD,
  };
  const onRecordEnd = opts.onRecordEnd;
  // context.bytes: bytes consumed once the record (and its line break) is parsed; records counts the header.
  if (onRecordEnd)
    options.on_record = (record, context) => {
      onRecordEnd(context.records - 1, context.bytes);
      return record;
    };
  const parser = parse(options);
  source.on('error', (err) => parser.destroy(err));
  // Errors are read from parser.errored by batches(); between reads nobody else listens, and an
  // 'error' without a listener would be an uncaught exception.
  parser.on('error', () => undefined);
  source.pipe(guard).pipe(parser);
  const records = batches(parser);
  const stop = () => {
    input.destroy();
    source.destroy();
    parser.destroy();
  };
  try {
    const firstRow = opts.firstRow ?? 1;
    const first = await nextRecord(records, guard, limits, firstRow);
    if (first === undefined) throw new FieldError('file', 'the CSV is empty (no header)');
    if (guard.badOffset !== undefined && first.some((name) => name.includes('\uFFFD')))
      throw brokenUtf8(guard, 'header');
    const columns = checkHeader(first, limits);
    const decimalCommas = delimiter === ',' ? undefined : { cells: 0 };
    const rowOpts = { firstRow, strict: !opts.keepMalformedRows, decimalCommas };
    return {
      columns,
      delimiter,
      ...(decimalCommas ? { decimalCommas: () => decimalCommas.cells } : {}),
      batches: rows(records, guard, columns, limits, rowOpts, stop),
    };
  } catch (err) {
    stop();
    throw err;
  }
}

async function* rows(
  records: Records,
  guard: Utf8Guard,
  columns: readonly string[],
  limits: TableLimits,
  opts: { firstRow: number; strict: boolean; decimalCommas: { cells: number } | undefined },
  stop: () => void,
): AsyncGenerator<Cell[][]> {
  const firstRow = opts.firstRow;
  let row = firstRow - 1;
  try {
    for (
      let batch = await next(records, guard, limits, firstRow);
      batch !== undefined;
      batch = await next(records, guard, limits, firstRow)
    ) {
      if (guard.badOffset !== undefined)
        batch.forEach((record, k) => checkDecoded(record, row + k + 1, columns, guard));
      if (opts.strict)
        batch.forEach((record, k) => {
          const reason = malformedReason(record, columns.length);
          if (reason !== undefined) throw malformedRowError(row + k + 1, reason);
        });
      row += batch.length;
      checkRowCount(row, limits);
      if (opts.decimalCommas) opts.decimalCommas.cells += withDecimalPoints(batch);
      yield batch;
    }
    if (guard.badOffset !== undefined) throw brokenUtf8(guard, at(row + 1));
  } finally {
    stop();
  }
}

/** A number written with a decimal comma, as Excel writes one where the decimal mark is a comma (no thousands marks). */
const DECIMAL_COMMA = /^\s*[+-]?\d+,\d+(?:[eE][+-]?\d+)?\s*$/;

/**
 * In a CSV not separated by commas, cells like `1,5` or `-0,25E+3` are numbers with a decimal
 * comma (Excel's export where that is the decimal mark, with semicolons between cells): they are
 * rewritten with a decimal point, in place, so the profile, training and every infer read them as
 * numbers alike. A cell with a thousands mark as well (`1.234,5`) is left as it is. The count.
 */
function withDecimalPoints(batch: string[][]): number {
  let changed = 0;
  for (const record of batch)
    for (let k = 0; k < record.length; k++) {
      const cell = record[k]!;
      if (cell.includes(',') && DECIMAL_COMMA.test(cell)) {
        record[k] = cell.replace(',', '.');
        changed++;
      }
    }
  return changed;
}

type Records = AsyncGenerator<string[][], undefined, number | undefined>;

/**
 * The records the parser holds, as arrays: one await per batch rather than per record (the
 * stream's own iterator costs a promise per record). `next(1)` asks for a single record.
 */
async function* batches(parser: Readable): Records {
  // The first batch is the header alone (a value passed to the first next() never arrives).
  let limit: number | undefined = 1;
  for (;;) {
    const batch: string[][] = [];
    while (limit === undefined || batch.length < limit) {
      const record = parser.read() as string[] | null;
      if (record === null) break;
      batch.push(record);
    }
    if (batch.length > 0) limit = yield batch;
    else if (parser.errored) throw parser.errored;
    else if (parser.readableEnded || parser.destroyed) return undefined;
    else await readable(parser);
  }
}

/** Resolves when `s` may have data, has ended or closed; rejects on its error. */
function readable(s: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error) => {
      s.off('readable', ok).off('end', ok).off('close', ok).off('error', settle);
      if (err) reject(err);
      else resolve();
    };
    const ok = () => settle();
    s.on('readable', ok).on('end', ok).on('close', ok).on('error', settle);
  });
}

async function nextRecord(
  records: Records,
  guard: Utf8Guard,
  limits: TableLimits,
  firstRow: number,
): Promise<string[] | undefined> {
  return (await next(records, guard, limits, firstRow, 1))?.[0];
}

/**
 * The next batch of records; csv-parse's errors become FieldError / TooLargeError naming the row. The row
 * comes from the error's own record count: the parser runs ahead of the rows yielded so far.
 */
async function next(
  records: Records,
  guard: Utf8Guard,
  limits: TableLimits,
  firstRow: number,
  limit?: number,
): Promise<string[][] | undefined> {
  try {
    const r = await records.next(limit);
    return r.done ? undefined : r.value;
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    // `records` counts the header too, so it is the 1-based data row of the failing record (in
    // what this read saw: a range read after its header starts at firstRow).
    const parsed = (err as CsvError & { records?: number }).records ?? 0;
    const where = parsed === 0 ? 'header' : at(parsed + firstRow - 1);
    if (guard.badOffset !== undefined) throw brokenUtf8(guard, where);
    if (err.code === 'CSV_MAX_RECORD_SIZE')
      throw new TooLargeError(where, `a record is longer than ${limits.maxRecordBytes} bytes`);
    throw new FieldError(where, `not valid CSV: ${err.message}`);
  }
}

/** Once the guard saw invalid bytes, the first row whose text holds U+FFFD is where they were. */
function checkDecoded(record: readonly string[], row: number, columns: readonly string[], guard: Utf8Guard): void {
  const k = record.findIndex((cell) => cell.includes('\uFFFD'));
  if (k >= 0) throw brokenUtf8(guard, at(row, columns[k]));
}

function brokenUtf8(guard: Utf8Guard, where: string): FieldError {
  return new FieldError(
    where,
    `invalid UTF-8 (first invalid byte at offset ${guard.badOffset}); save the file as UTF-8`,
  );
}
