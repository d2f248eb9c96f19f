import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { FieldError, TooLargeError } from '@tq/contracts';
import { profileTable, readTable } from '@tq/tables';
import { chunks, collect, jsonFileStream, jsonlStream, records } from './public-tables';

const bytes = (text: string | Buffer, size: number) =>
  Readable.from(chunks(Buffer.isBuffer(text) ? text : Buffer.from(text), size));

const readAll = async (stream: Readable, limits = {}) => collect(await readTable(stream, 'jsonl', limits));

/** Rejects with `type` whose field is `field`. */
async function rejectsAt(p: Promise<unknown>, type: typeof FieldError, field: string, message?: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
    assert.equal(err.field, field, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** A lazily generated file: counts the bytes pulled, so a test can show a refusal stopped early. */
function generated(parts: () => Generator<string>): { stream: Readable; pulled: () => number; closed: () => boolean } {
  let pulled = 0;
  let closed = false;
  function* gen(): Generator<Buffer> {
    try {
      for (const part of parts()) {
        const b = Buffer.from(part);
        pulled += b.length;
        yield b;
      }
    } finally {
      closed = true;
    }
  }
  return { stream: Readable.from(gen()), pulled: () => pulled, closed: () => closed };
}

describe('readTable (JSON array of objects, sniffed in a .json / jsonl source)', () => {
  it('reads penguins.json as it ships: the same columns, rows and profile as its JSON Lines form', async () => {
    const array = await readTable(jsonFileStream('penguins'), 'jsonl');
    const lines = await readTable(jsonlStream('penguins'), 'jsonl');
    assert.deepEqual(array.columns, lines.columns);
    const rows = await collect(array);
    assert.equal(rows.length, 344);
    assert.deepEqual(rows, await collect(lines));
    assert.deepEqual(rows[0], ['Adelie', 'Torgersen', 39.1, 18.7, 181, 3750, 'MALE']);
    const profileOf = async (open: () => Readable) =>
      profileTable(await readTable(open(), 'jsonl'), { label: 'Species' });
    const profile = await profileOf(() => jsonFileStream('penguins'));
    assert.deepEqual(profile, await profileOf(() => jsonlStream('penguins')));
    assert.equal(profile.label?.task, 'classification');
    if (profile.label?.task === 'classification')
      assert.deepEqual(profile.label.classes.map((c) => c.value).sort(), ['Adelie', 'Chinstrap', 'Gentoo']);
  });

  it('reads cars.json (406 rows, dates as text) in batches of at most 256 rows', async () => {
    const t = await readTable(jsonFileStream('cars'), 'jsonl');
    const sizes: number[] = [];
    for await (const batch of t.batches) sizes.push(batch.length);
    assert.equal(
      sizes.reduce((a, b) => a + b, 0),
      records('cars').length,
    );
    assert.ok(Math.max(...sizes) <= 256, `batches of ${sizes.join(', ')}`);
  });

  it('parses the same rows whatever the chunk boundaries (1 to 7 bytes), with a BOM, escapes and UTF-8', async () => {
    const text =
      '\uFEFF \r\n [ {"name": "caf\u00e9 \\"x\\"", "n": -1.5e2, "ok": true, "t": null},\n' +
      '{"n": 0, "name": "na\u00efve \\u00e9"}, {"ok": false} ]\n';
    const expected = [
      ['caf\u00e9 "x"', -150, true, null],
      ['na\u00efve \u00e9', 0, null, null],
      [null, null, false, null],
    ];
    for (let size = 1; size <= 7; size++) {
      const t = await readTable(bytes(text, size), 'jsonl');
      assert.deepEqual(t.columns, ['name', 'n', 'ok', 't']);
      assert.deepEqual(await collect(t), expected, `chunks of ${size} bytes`);
    }
  });

  it('names the row of an unknown key, a nested value, a non-object element and invalid JSON', async () => {
    const at = (text: string) => readAll(bytes(text, 3));
    await rejectsAt(at('[{"a":1},{"b":2}]'), FieldError, 'row 2, column "b"', /unknown column/);
    await rejectsAt(at('[{"a":1},{"a":{"x":2}}]'), FieldError, 'row 2, column "a"');
    await rejectsAt(at('[{"a":1},{"a":[2]}]'), FieldError, 'row 2, column "a"');
    await rejectsAt(at('[{"a":1},{"a":2},3]'), FieldError, 'row 3', /must be an object/);
    await rejectsAt(at('[1,2]'), FieldError, 'row 1', /must be an object/);
    await rejectsAt(at('[[{"a":1}]]'), FieldError, 'row 1', /must be an object/);
    await rejectsAt(at('[{"a":1},{"a":}]'), FieldError, 'row 2', /not valid JSON/);
    await rejectsAt(at('[{"a":1} {"a":2}]'), FieldError, 'row 2', /not valid JSON/);
    await rejectsAt(at('[{"a":1}]\n{"a":2}'), FieldError, 'file', /after the closing \]/);
    await rejectsAt(at('[{"a":1},{"a":2}'), FieldError, 'file', /ends before/);
  });

  it('says an empty array has no records, and refuses broken UTF-8 naming its row (400)', async () => {
    await rejectsAt(readAll(bytes(' [ \n ] ', 2)), FieldError, 'file', /has no records/);
    await rejectsAt(readAll(bytes('[]', 1)), FieldError, 'file', /has no records/);
    const broken = Buffer.concat([Buffer.from('[{"a":"x"},{"a":"caf'), Buffer.from([0xe9]), Buffer.from('"}]')]);
    for (const size of [1, 4, 1000]) await rejectsAt(readAll(bytes(broken, size)), FieldError, 'row 2', /UTF-8/);
    const cut = Buffer.concat([Buffer.from('[{"a":"x"},{"a":"caf'), Buffer.from([0xc3])]);
    await rejectsAt(readAll(bytes(cut, 5)), FieldError, 'row 2', /UTF-8/);
  });

  it('enforces maxColumns and maxRows (413)', async () => {
    const wide = `[{${Array.from({ length: 30 }, (_, i) => `"c${i}":${i}`).join(',')}}]`;
    await rejectsAt(readAll(bytes(wide, 64), { maxColumns: 20 }), TooLargeError, 'columns');
    const long = generated(function* () {
      yield '[';
      for (let i = 0; i < 1_000_000; i++) yield `${i ? ',' : ''}{"a":${i},"b":${i % 3}}`;
      yield ']';
    });
    await rejectsAt(readAll(long.stream, { maxRows: 1_000 }), TooLargeError, 'rows');
    assert.ok(long.pulled() < 100_000, `read ${long.pulled()} bytes of a ~20 MB file`);
  });

  it('refuses one huge element after reading little more than maxRecordBytes of it, never assembling it', async () => {
    const elements = [
      ['{"a":"', 'x'],
      ['{"a":1,"b":[', '1,'],
      ['{"a":1,"b":{"c":"', 'x'],
      ['', ' '],
    ];
    for (const [start, filler] of elements) {
      const huge = generated(function* () {
        yield '[{"a":1},';
        yield start!;
        for (let i = 0; i < 10_000; i++) yield filler!.repeat(50_000);
      });
      await rejectsAt(readAll(huge.stream, { maxRecordBytes: 64 * 1024 }), TooLargeError, 'row 2');
      assert.ok(huge.pulled() < 1_000_000, `read ${huge.pulled()} bytes of a 1 GB element`);
      assert.ok(huge.closed(), 'the source is closed');
    }
    // Many elements each under the limit pass, however many share a chunk.
    const many = `[${Array.from({ length: 2_000 }, (_, i) => `{"a":${i}}`).join(',')}]`;
    assert.equal((await readAll(bytes(many, 100_000), { maxRecordBytes: 64 })).length, 2_000);
  });

  it('abandoning the rows destroys the source', async () => {
    const file = generated(function* () {
      yield '[';
      for (let i = 0; i < 100_000; i++) yield `${i ? ',' : ''}{"a":${i}}`;
      yield ']';
    });
    const t = await readTable(file.stream, 'jsonl');
    for await (const batch of t.batches) {
      assert.ok(batch.length > 0);
      break;
    }
    assert.ok(file.closed(), 'the generator behind the source was closed');
    assert.ok(file.stream.destroyed);
    assert.ok(file.pulled() < 100_000, `read ${file.pulled()} bytes`);
  });
});
