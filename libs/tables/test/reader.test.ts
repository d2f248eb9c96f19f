import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { FieldError, TooLargeError } from '@tq/contracts';
import { isMissing, malformedReason, readTable, rowsOf } from '@tq/tables';
import { chunks, collect, openPublic } from './public-tables';

const csv = (text: string | Buffer, size = 7) =>
  Readable.from(chunks(Buffer.isBuffer(text) ? text : Buffer.from(text), size));

/** readTable then every row: an error may come from either (the parser runs ahead). */
const readAll = async (stream: Readable, format: 'csv' | 'jsonl', limits = {}) =>
  collect(await readTable(stream, format, limits));

/** Rejects with `type` whose first issue names `field`. */
async function rejectsAt(p: Promise<unknown>, type: typeof FieldError, field: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    if (typeof field === 'string') assert.equal(err.field, field);
    else assert.match(err.field, field);
    return true;
  });
}

/** A lazily generated CSV: counts the bytes pulled, so a test can show a refusal stopped early. */
function generated(
  header: string,
  row: (i: number) => string,
  rows: number,
): { stream: Readable; pulled: () => number } {
  let pulled = 0;
  function* gen(): Generator<Buffer> {
    const first = Buffer.from(`${header}\n`);
    pulled += first.length;
    yield first;
    for (let i = 0; i < rows; i++) {
      const b = Buffer.from(`${row(i)}\n`);
      pulled += b.length;
      yield b;
    }
  }
  return { stream: Readable.from(gen()), pulled: () => pulled };
}

describe('readTable (CSV)', () => {
  it('drops the BOM, keeps quoted newlines and commas, reads headers with spaces and parentheses', async () => {
    const text = '\uFEFF"Beak Length (mm)",Island,Note\n39.1,Torgersen,"two\nlines, one cell"\nNA,Dream,N/A\n';
    const t = await readTable(csv(text), 'csv');
    assert.deepEqual(t.columns, ['Beak Length (mm)', 'Island', 'Note']);
    const rows = await collect(t);
    assert.deepEqual(rows, [
      ['39.1', 'Torgersen', 'two\nlines, one cell'],
      ['NA', 'Dream', 'N/A'],
    ]);
    assert.deepEqual(
      ['', 'NA', 'N/A', 'null', 'NaN', ' NA ', null, Number.NaN].map((c) => isMissing(c)),
      Array(8).fill(true),
    );
    assert.deepEqual(
      ['0', 'na', 'none', 'Dream', false, 0].map((c) => isMissing(c)),
      Array(6).fill(false),
    );
  });

  it('reads a real CSV (seattle-weather.csv from vega-datasets)', async () => {
    const t = await openPublic('seattle-weather');
    assert.deepEqual(t.columns, ['date', 'precipitation', 'temp_max', 'temp_min', 'wind', 'weather']);
    const rows = await collect(t);
    assert.equal(rows.length, 1461);
    assert.deepEqual(rows[0], ['2012-01-01', '0.0', '12.8', '5.0', '4.7', 'drizzle']);
  });

  it('keeps a valid multi-byte character split across chunks, and names the row and column of broken UTF-8', async () => {
    const ok = await readAll(csv('name,x\ncafé,1\nnaïve,2\n', 1), 'csv');
    assert.deepEqual(
      ok.map((r) => r[0]),
      ['café', 'naïve'],
    );
    const broken = Buffer.concat([Buffer.from('a,b\n1,ok\n2,caf'), Buffer.from([0xe9]), Buffer.from('\n3,x\n')]);
    await rejectsAt(readAll(csv(broken), 'csv'), FieldError, 'row 2, column "b"');
  });

  it('names the row of a record with the wrong number of cells and of an unclosed quote', async () => {
    await rejectsAt(readAll(csv('a,b\n1,2\n3\n'), 'csv'), FieldError, 'row 2');
    await rejectsAt(readAll(csv('a,b\n1,2\n3,"4\n'), 'csv'), FieldError, 'row 2');
    await rejectsAt(readTable(csv('a,a\n1,2\n'), 'csv'), FieldError, 'header');
    await rejectsAt(readTable(csv(''), 'csv'), FieldError, 'file');
  });

  it('with keepMalformedRows, yields a record of another cell count in its place, with its reason', async () => {
    const table = await readTable(csv('a,b\n1,2\n3\n4,5,6\n7,8\n'), 'csv', {}, { keepMalformedRows: true });
    const rows = await collect(table);
    assert.deepEqual(rows, [['1', '2'], ['3'], ['4', '5', '6'], ['7', '8']]);
    assert.deepEqual(
      rows.map((r) => malformedReason(r, 2)),
      [undefined, 'has 1 cell, the header has 2', 'has 3 cells, the header has 2', undefined],
    );
    // An unclosed quote is no record at all: it still ends the read.
    const open = await readTable(csv('a,b\n1,2\n3,"4\n'), 'csv', {}, { keepMalformedRows: true });
    await rejectsAt(collect(open), FieldError, 'row 2');
  });

  it('numbers rows from firstRow (a shard: its header, then its range), in every error it names', async () => {
    const read = (text: string | Buffer, limits = {}) =>
      readTable(csv(text, 4), 'csv', limits, { firstRow: 601 }).then((t) => collect(t));
    await rejectsAt(read('a,b\n1,2\n3\n'), FieldError, 'row 602');
    await rejectsAt(read('a,b\n1,2\n3,"4\n'), FieldError, 'row 602');
    const broken = Buffer.concat([Buffer.from('a,b\n1,2\n3,'), Buffer.from([0xff]), Buffer.from('\n')]);
    await rejectsAt(read(broken), FieldError, 'row 602, column "b"');
    await rejectsAt(read('a,b\n1,2\n3,4\n', { maxRows: 601 }), TooLargeError, 'rows');
    assert.deepEqual(await read('a,b\n1,2\n'), [['1', '2']]);
  });

  it('refuses 20,000 columns by the column limit after reading only the header (413)', async () => {
    const cols = Array.from({ length: 20_000 }, (_, i) => `c${i}`);
    const file = generated(cols.join(','), () => cols.map((_, i) => i).join(','), 1_000);
    await rejectsAt(readTable(file.stream, 'csv'), TooLargeError, 'columns');
    assert.ok(file.pulled() < 10_000_000, `read ${file.pulled()} bytes of a ~110 MB file`);
  });

  it('streams 20,000 columns when the limit allows, and stops a file over the row limit early (413)', async () => {
    const cols = Array.from({ length: 20_000 }, (_, i) => `c${i}`);
    const wide = await readTable(
      generated(cols.join(','), (r) => cols.map((_, i) => (i + r) % 7).join(','), 50).stream,
      'csv',
      { maxColumns: 20_000 },
    );
    let rows = 0;
    for await (const row of rowsOf(wide)) {
      assert.equal(row.length, 20_000);
      rows++;
    }
    assert.equal(rows, 50);
    const long = generated('a,b', (i) => `${i},${i % 3}`, 2_000_000);
    await rejectsAt(readAll(long.stream, 'csv', { maxRows: 1_000 }), TooLargeError, 'rows');
    assert.ok(long.pulled() < 200_000, `read ${long.pulled()} bytes of a ~20 MB file`);
  });

  it('refuses a record over maxRecordBytes (an unclosed quote cannot take unbounded memory)', async () => {
    const file = generated('a,b', (i) => (i === 0 ? '1,"never closed' : 'x'.repeat(1000)), 100_000);
    await rejectsAt(readAll(file.stream, 'csv', { maxRecordBytes: 64 * 1024 }), TooLargeError, 'row 1');
    assert.ok(file.pulled() < 1_000_000);
  });
});

describe('readTable (JSONL)', () => {
  it('reads a real table (penguins from vega-datasets) with JSON nulls and spaces in keys', async () => {
    const t = await openPublic('penguins');
    assert.deepEqual(t.columns, [
      'Species',
      'Island',
      'Beak Length (mm)',
      'Beak Depth (mm)',
      'Flipper Length (mm)',
      'Body Mass (g)',
      'Sex',
    ]);
    const rows = await collect(t);
    assert.equal(rows.length, 344);
    assert.equal(rows.filter((r) => r[6] === null).length, 10);
  });

  it('names the row of broken UTF-8, invalid JSON, an unknown key and a nested value', async () => {
    const jl = (s: string | Buffer) => csv(s, 5);
    const broken = Buffer.concat([Buffer.from('{"a":1}\n{"a":"'), Buffer.from([0xff]), Buffer.from('"}\n')]);
    await rejectsAt(readAll(jl(broken), 'jsonl'), FieldError, 'row 2');
    await rejectsAt(readAll(jl('{"a":1}\n\n{"a":\n'), 'jsonl'), FieldError, 'row 2');
    await rejectsAt(readAll(jl('{"a":1}\n{"b":2}\n'), 'jsonl'), FieldError, 'row 2, column "b"');
    await rejectsAt(readAll(jl('{"a":1}\n{"a":[2]}\n'), 'jsonl'), FieldError, 'row 2, column "a"');
    assert.deepEqual(await readAll(jl('{"a":1,"b":"x"}\n{"a":null}\n'), 'jsonl'), [
      [1, 'x'],
      [null, null],
    ]);
  });

  it('with keepMalformedRows, yields a line that does not parse (or names an unknown key) in its place', async () => {
    const text = '{"a":1}\n{"a":\n{"b":2}\n[1]\n{"a":3}\n';
    const rows = await collect(await readTable(csv(text, 5), 'jsonl', {}, { keepMalformedRows: true }));
    assert.equal(rows.length, 5);
    const reasons = rows.map((r) => malformedReason(r, 1));
    assert.deepEqual([reasons[0], reasons[4]], [undefined, undefined]);
    assert.deepEqual([rows[0], rows[4]], [[1], [3]]);
    assert.match(reasons[1]!, /not valid JSON/);
    assert.match(reasons[2]!, /b/);
    assert.match(reasons[3]!, /JSON object/);
  });

  it('drops a BOM, and refuses a line over maxRecordBytes after reading little of it (413)', async () => {
    assert.deepEqual(await readAll(csv('\uFEFF{"a b (c)":true}\r\n', 5), 'jsonl'), [[true]]);
    const huge = generated('{"a":1}', () => `{"a":"${'x'.repeat(100_000)}`, 10_000);
    await rejectsAt(readAll(huge.stream, 'jsonl', { maxRecordBytes: 64 * 1024 }), TooLargeError, 'row 2');
    assert.ok(huge.pulled() < 1_000_000, `read ${huge.pulled()} bytes of a 1 GB line`);
  });
});

describe('readTable (JSON Lines by byte range: a shard)', () => {
  // A BOM, blank lines (one before the first record, CRLF ones between), a last line without LF.
  const text = '\uFEFF\n{"a":1,"b":"x","c":true}\r\n\n{"a":2}\n  \r\n{"b":"y"}\n{"c":false,"a":4}\n\n{"a":5,"b":"z"}';
  const bytes = Buffer.from(text);

  it('reports where each record ends (a BOM and blank lines counted); slices there hold whole records', async () => {
    for (const size of [1, 3, 7, 1000]) {
      const ends: [number, number][] = [];
      const t = await readTable(csv(bytes, size), 'jsonl', {}, { onRecordEnd: (r, b) => ends.push([r, b]) });
      await collect(t);
      assert.deepEqual(
        ends.map(([r]) => r),
        [1, 2, 3, 4, 5],
        'one call per record, none for a header',
      );
      assert.equal(ends.at(-1)![1], bytes.length, 'the last record ends the file');
      // Each slice between two ends is one record, blank lines around it aside.
      const slices = ends.map(([, b], k) => bytes.subarray(k === 0 ? 0 : ends[k - 1]![1], b).toString('utf8'));
      assert.deepEqual(
        slices.map((s) => s.replace(/^\uFEFF/, '').trim()),
        ['{"a":1,"b":"x","c":true}', '{"a":2}', '{"b":"y"}', '{"c":false,"a":4}', '{"a":5,"b":"z"}'],
        `chunks of ${size}`,
      );
    }
  });

  it('with the columns given, the first line of a range is a data row, however few keys it has', async () => {
    const ends: number[] = [];
    await collect(await readTable(csv(bytes), 'jsonl', {}, { onRecordEnd: (_r, b) => ends.push(b) }));
    // Rows 3..5: starts with blank lines, and row 3 has only "b".
    const range = bytes.subarray(ends[1]);
    const t = await readTable(csv(range, 4), 'jsonl', {}, { columns: ['a', 'b', 'c'], firstRow: 3 });
    assert.deepEqual(t.columns, ['a', 'b', 'c']);
    assert.deepEqual(await collect(t), [
      [null, 'y', null],
      [4, null, false],
      [5, 'z', null],
    ]);
    // The whole file read with the columns given reads the same rows as without them.
    const whole = await readAll(csv(bytes), 'jsonl');
    const given = await collect(await readTable(csv(bytes), 'jsonl', {}, { columns: ['a', 'b', 'c'] }));
    assert.deepEqual(given, whole);
  });

  it('names rows of the whole table (firstRow): a key outside the columns, invalid JSON, a long line', async () => {
    const opts = { columns: ['a', 'b'], firstRow: 301 };
    const read = (s: string, limits = {}) => readTable(csv(s, 3), 'jsonl', limits, opts).then((t) => collect(t));
    await rejectsAt(read('{"b":1}\n\n{"a":2,"z":3}\n'), FieldError, 'row 302, column "z"');
    await rejectsAt(read('{"b":1}\n{"a":1}\n{"a":\n'), FieldError, 'row 303');
    await rejectsAt(read('{"a":1}\n{"a":[1]}\n'), FieldError, 'row 302, column "a"');
    await rejectsAt(read(`{"a":1}\n{"a":"${'x'.repeat(200)}"}\n`, { maxRecordBytes: 64 }), TooLargeError, 'row 302');
    // The same errors as a whole-file read names: the unknown key's message is the one it gives.
    await assert.rejects(read('{"a":2,"z":3}\n'), /unknown column \(not in the first record\)/);
  });

  it('refuses the columns option for a CSV and for a JSON array (a caller mistake, not the file)', async () => {
    await assert.rejects(readTable(csv('a\n1\n'), 'csv', {}, { columns: ['a'] }), /JSON Lines only/);
    await assert.rejects(readTable(csv('[{"a":1}]'), 'jsonl', {}, { columns: ['a'] }), /JSON array/);
  });
});
