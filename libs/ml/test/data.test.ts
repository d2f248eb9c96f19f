import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ArtifactStore, DatasetNotFoundError, DatasetStore } from '@tq/storage';
import {
  resolveDataset,
  DatasetParseError,
  forEachCsvRow,
  loadBuiltinDataset,
  mulberry32,
  parseDatasetUpload,
  seededPermutation,
} from '@tq/ml';

const csv = (text: string, labelColumn = 'label', featureColumns?: string) =>
  parseDatasetUpload(Buffer.from(text), 'csv', { labelColumn, ...(featureColumns ? { featureColumns } : {}) });
const jsonl = (text: string, labelColumn = 'label') => parseDatasetUpload(Buffer.from(text), 'jsonl', { labelColumn });

function rejectsWith(fn: () => unknown, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetParseError, `expected DatasetParseError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.reason, reason);
    return true;
  });
}

describe('built-in datasets', () => {
  it('mnist: 10,000 digits of 784 pixels in 0..1, every class in the validation tail, cached', () => {
    const d = loadBuiltinDataset('mnist');
    assert.equal(d.rows, 10000);
    assert.equal(d.featureCount, 784);
    assert.deepEqual(d.inputShape, [28, 28, 1]);
    assert.equal(d.x.length, 10000 * 784);
    assert.deepEqual(d.classes, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let min = Infinity;
    let max = -Infinity;
    for (const v of d.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    assert.equal(min, 0);
    assert.ok(max > 0.99 && max <= 1);
    const counts = new Array<number>(10).fill(0);
    for (const c of d.y) counts[c]!++;
    assert.ok(
      counts.every((c) => c > 800),
      counts.join(','),
    );
    const tail = new Set(d.y.subarray(9000)); // the last 10% (validationSplit 0.1) holds every digit
    assert.equal(tail.size, 10);
    assert.equal(loadBuiltinDataset('mnist'), d);
  });

  it('iris: 150 rows, 4 features, 50 of each named class', () => {
    const d = loadBuiltinDataset('iris');
    assert.equal(d.rows, 150);
    assert.equal(d.featureCount, 4);
    assert.deepEqual(d.classes, ['setosa', 'versicolor', 'virginica']);
    assert.deepEqual(
      [0, 1, 2].map((c) => d.y.filter((y) => y === c).length),
      [50, 50, 50],
    );
    // The classic first row (5.1, 3.5, 1.4, 0.2) is a setosa wherever the fixed shuffle put it.
    const r = [...Array(150).keys()].find(
      (i) =>
        d.x[i * 4] === Math.fround(5.1) && d.x[i * 4 + 1] === Math.fround(3.5) && d.x[i * 4 + 2] === Math.fround(1.4),
    );
    assert.ok(r !== undefined);
    assert.equal(d.classes[d.y[r]!], 'setosa');
  });
});

describe('seeded shuffle', () => {
  it('is a permutation, the same for the same seed and different for another', () => {
    const a = seededPermutation(1000, 7);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      [...Array(1000).keys()],
    );
    assert.deepEqual(seededPermutation(1000, 7), a);
    assert.notDeepEqual(seededPermutation(1000, 8), a);
    const r = mulberry32(1);
    const draws = Array.from({ length: 10000 }, r);
    assert.ok(draws.every((v) => v >= 0 && v < 1));
    const mean = draws.reduce((s, v) => s + v, 0) / draws.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  });
});

describe('CSV', () => {
  it('splits quoted fields, doubled quotes, embedded newlines, CRLF and a BOM', () => {
    const rows: string[][] = [];
    forEachCsvRow('\uFEFFa,b,c\r\n"x,1","say ""hi""","two\nlines"\r\n\r\n,last,\n', (cells) => rows.push(cells));
    assert.deepEqual(rows, [
      ['a', 'b', 'c'],
      ['x,1', 'say "hi"', 'two\nlines'],
      ['', 'last', ''],
    ]);
  });

  it('parses features and class names, classes in natural order', () => {
    const d = csv('x1,x2,label\r\n1,2.5,c10\r\n-3,4e-1,c2\r\n" 5 ",6,c10\r\n');
    assert.deepEqual(d.classes, ['c2', 'c10']);
    assert.deepEqual([...d.y], [1, 0, 1]);
    assert.deepEqual([...d.x], [1, 2.5, -3, Math.fround(0.4), 5, 6]);
    assert.equal(d.featureCount, 2);
    assert.deepEqual(d.inputShape, [2]);
    assert.deepEqual(d.featureColumns, ['x1', 'x2']);
  });

  it('keeps integer labels 0..k-1 as their own index and honours featureColumns order', () => {
    const d = csv('a,b,c,label\n1,2,3,2\n4,5,6,0\n7,8,9,1\n', 'label', 'c, a');
    assert.deepEqual(d.classes, ['0', '1', '2']);
    assert.deepEqual([...d.y], [2, 0, 1]);
    assert.deepEqual([...d.x], [3, 1, 6, 4, 9, 7]);
  });

  it('names the field of every mistake', () => {
    rejectsWith(() => csv('x,y\n1,a\n', 'label'), 'labelColumn', /no column "label"/);
    rejectsWith(() => csv('x,label\n1,a\n', 'label', 'x,x9'), 'featureColumns', /no column "x9"/);
    rejectsWith(() => csv('x,label\n1,a\n', 'label', 'label'), 'featureColumns', /label column/);
    rejectsWith(() => csv('x1,x2,x3,label\n1,2,3,a\n1,2,NaN,b\n'), 'row 2, column "x3"', /not a number/);
    rejectsWith(() => csv('x1,x2,x3,label\n1,2,3,a\n1,,3,b\n'), 'row 2, column "x2"', /empty/);
    rejectsWith(() => csv('x1,label\n0x1f,a\n'), 'row 1, column "x1"', /not a number/);
    rejectsWith(() => csv('x1,label\nInfinity,a\n'), 'row 1, column "x1"', /not a number/);
    rejectsWith(() => csv('x1,label\n1e39,a\n'), 'row 1, column "x1"', /float32/);
    rejectsWith(() => csv('x1,label\n1,\n'), 'row 1, column "label"', /empty/);
    rejectsWith(() => csv('x1,label\n1,a\n2\n'), 'row 2', /1 cells, the header has 2/);
    rejectsWith(() => csv('x1,label\n1,"a\n'), 'row 1', /not closed/);
    rejectsWith(() => csv('x1,label\n'), 'file', /no data rows/);
    rejectsWith(() => csv(''), 'file', /empty/);
    rejectsWith(() => csv('x,x,label\n1,2,a\n'), 'header', /"x" appears twice/);
  });
});

describe('JSONL', () => {
  it('parses objects with numeric or string labels and skips blank lines', () => {
    const d = jsonl(
      '{"a":1,"b":2,"label":"cat"}\r\n\n{"a":3.5,"b":"4","label":"dog","note":"extra"}\n{"b":6,"a":5,"label":"cat"}',
    );
    assert.deepEqual(d.classes, ['cat', 'dog']);
    assert.deepEqual([...d.x], [1, 2, 3.5, 4, 5, 6]);
    assert.deepEqual([...d.y], [0, 1, 0]);
    const n = jsonl('{"f":1,"label":1}\n{"f":2,"label":0}\n');
    assert.deepEqual(n.classes, ['0', '1']);
    assert.deepEqual([...n.y], [1, 0]);
  });

  it('names the field of every mistake', () => {
    rejectsWith(() => jsonl('{"a":1,"label":"x"}\n{"label":"y"}\n'), 'row 2, column "a"', /missing/);
    rejectsWith(() => jsonl('{"a":1,"label":"x"}\n{"a":null,"label":"y"}\n'), 'row 2, column "a"', /null/);
    rejectsWith(() => jsonl('{"a":1,"label":"x"}\nnot json\n'), 'row 2', /not valid JSON/);
    rejectsWith(() => jsonl('[1,2]\n'), 'row 1', /not a JSON object/);
    rejectsWith(() => jsonl('{"a":1,"y":"x"}\n'), 'labelColumn', /no column "label"/);
    rejectsWith(() => jsonl('\n\n'), 'file', /no rows/);
  });
});

describe('resolveDataset', () => {
  it('finds built-in and uploaded datasets and reports unknown ids', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tq-resolve-'));
    try {
      const store = new DatasetStore(new ArtifactStore(root));
      assert.equal(await resolveDataset({ builtin: 'iris' }, store), loadBuiltinDataset('iris'));
      const parsed = csv('x1,x2,label\n1,2,a\n3,4,b\n');
      const info = await store.save(parsed, {
        name: 'up',
        format: 'csv',
        labelColumn: 'label',
        featureColumns: parsed.featureColumns!,
        bytes: 20,
      });
      const loaded = await resolveDataset({ id: info.id }, store);
      assert.deepEqual([...loaded.x], [1, 2, 3, 4]);
      assert.deepEqual(loaded.classes, ['a', 'b']);
      await assert.rejects(resolveDataset({ id: '4b1c3a5e-0000-4000-8000-000000000000' }, store), DatasetNotFoundError);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
