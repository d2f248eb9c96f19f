import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CSV_DELIMITERS, type CsvDelimiter } from '@tq/contracts';
import { readTable } from '@tq/tables';
import { delimiterOf } from '../src/csv-delimiter';
import { chunks, collect } from './public-tables';

describe('delimiterOf', () => {
  const cases: [string, CsvDelimiter][] = [
    ['a,b,c\n1,2,3\n', ','],
    ['a;b;c\r\n"1,5";2;3\r\n', ';'],
    ['a\tb\tc\n', '\t'],
    ['a|b|c', '|'],
    ['"x,y,z";b\n', ';'], // separators inside quotes do not count
    ['"say ""a,b""";c;d\n', ';'], // nor inside escaped quotes
    ['a;b,c\n', ','], // a tie goes to the earlier candidate
    ['only\n1,2,3,4\n', ','], // one column: the header alone decides, and holds none
    ['a;b\n1,2,3,4,5\n', ';'], // the data rows never vote
    ['\uFEFFname;age\n', ';'],
    ['', ','],
  ];
  for (const [head, expected] of cases)
    it(`${JSON.stringify(head)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(delimiterOf(Buffer.from(head)), expected);
    });
});

/** A cell as a CSV writer puts it: quoted when it holds the separator, a quote or a line break. */
const cellText = (cell: string, d: string) =>
  cell.includes(d) || /["\r\n]/.test(cell) || cell.trim() !== cell ? `"${cell.replace(/"/g, '""')}"` : cell;

describe('readTable (CSV) with each separator', () => {
  it('reads back any table written with any separator, however the bytes are chunked', async () => {
    const name = fc.stringMatching(/^[A-Za-z]([A-Za-z0-9 _]{0,6}[A-Za-z0-9_])?$/);
    // No digits: a cell like 1,5 is a number in a file not separated by commas (tested below).
    const cell = fc.string({
      unit: fc.constantFrom('a', 'x', '.', ',', ';', '\t', '|', '"', '\n', ' ', 'é'),
      maxLength: 6,
    });
    const table = fc.integer({ min: 2, max: 5 }).chain((width) =>
      fc.record({
        header: fc.uniqueArray(name, { minLength: width, maxLength: width, selector: (n) => n.toLowerCase() }),
        rows: fc.array(fc.array(cell, { minLength: width, maxLength: width }), { maxLength: 6 }),
        d: fc.constantFrom(...CSV_DELIMITERS),
        chunk: fc.integer({ min: 1, max: 40 }),
        crlf: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(table, async ({ header, rows, d, chunk, crlf }) => {
        const eol = crlf ? '\r\n' : '\n';
        const text = [header, ...rows].map((r) => r.map((c) => cellText(c, d)).join(d)).join(eol) + eol;
        const read = await readTable(Readable.from(chunks(Buffer.from(text), chunk)), 'csv');
        assert.equal(read.delimiter, d);
        assert.deepEqual(read.columns, header);
        assert.deepEqual(await collect(read), rows);
      }),
      { numRuns: 400 },
    );
  });

  it('reads 1,5 as 1.5 where cells are not separated by commas, and counts those cells', async () => {
    const text = 'a;b;c;d\r\n1,5;-0,25E+3;1.234,5;" 2,5 "\r\n3;x,5;1,;7\r\n';
    const semi = await readTable(Readable.from(chunks(Buffer.from(text), 5)), 'csv');
    assert.deepEqual(await collect(semi), [
      ['1.5', '-0.25E+3', '1.234,5', ' 2.5 '],
      ['3', 'x,5', '1,', '7'],
    ]);
    assert.equal(semi.decimalCommas?.(), 3);
    const comma = await readTable(Readable.from(['a,b\n"1,5",2\n']), 'csv');
    assert.deepEqual(await collect(comma), [['1,5', '2']], 'a comma-separated file keeps its quoted commas');
    assert.equal(comma.decimalCommas, undefined);
  });

  it('closes the source when the reader stops early', async () => {
    function* endless(): Generator<Buffer> {
      yield Buffer.from('a;b\n');
      for (;;) yield Buffer.from('1;2\n');
    }
    const source = Readable.from(endless());
    const table = await readTable(source, 'csv');
    for await (const batch of table.batches) if (batch.length > 0) break;
    assert.ok(source.destroyed);
  });
});
