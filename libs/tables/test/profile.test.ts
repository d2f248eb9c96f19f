import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { FieldError, tableProfileSchema, type TableProfile } from '@tq/contracts';
import { profileTable, readTable } from '@tq/tables';
import { openPublic } from './public-tables';

const column = (p: TableProfile, name: string) => p.columns.find((c) => c.name === name)!;
const csv = async (text: string) => readTable(Readable.from([Buffer.from(text)]), 'csv');

describe('profileTable', () => {
  it('profiles penguins: categories, numbers in raw units with missing cells, the class balance', async () => {
    const p = tableProfileSchema.parse(await profileTable(await openPublic('penguins'), { label: 'Species' }));
    assert.equal(p.rows, 344);
    assert.deepEqual(
      p.columns.map((c) => c.kind),
      ['categorical', 'categorical', 'numeric', 'numeric', 'numeric', 'numeric', 'categorical'],
    );
    const beak = column(p, 'Beak Length (mm)');
    assert.equal(beak.missing, 2);
    assert.equal(beak.min, 32.1);
    assert.equal(beak.max, 59.6);
    assert.ok(Math.abs(beak.mean! - 43.92193) < 1e-4);
    const sex = column(p, 'Sex');
    assert.equal(sex.missing, 10);
    assert.deepEqual(
      sex.top?.map((t) => t.value),
      ['MALE', 'FEMALE', '.'],
    );
    const classes = [
      { value: 'Adelie', count: 152 },
      { value: 'Gentoo', count: 124 },
      { value: 'Chinstrap', count: 68 },
    ];
    assert.deepEqual(p.label, { column: 'Species', task: 'classification', classes });
  });

  it('profiles cars: an identifier dropped, dates, a regression target inferred, overrides applied', async () => {
    const p = await profileTable(await openPublic('cars'), { label: 'Miles_per_Gallon' });
    assert.equal(column(p, 'Name').kind, 'text');
    assert.match(column(p, 'Name').dropped!, /identifier/);
    assert.equal(column(p, 'Year').kind, 'datetime');
    assert.equal(column(p, 'Origin').kind, 'categorical');
    assert.equal(column(p, 'Cylinders').kind, 'numeric');
    const mpg = column(p, 'Miles_per_Gallon');
    assert.deepEqual(p.label, {
      column: 'Miles_per_Gallon',
      task: 'regression',
      min: 9,
      max: 46.6,
      mean: mpg.mean,
      std: mpg.std,
    });
    const o = await profileTable(await openPublic('cars'), {
      label: 'Miles_per_Gallon',
      overrides: { Name: 'ignore', Cylinders: 'categorical' },
    });
    assert.deepEqual([column(o, 'Name').dropped, column(o, 'Name').overridden], ['ignored by request', true]);
    assert.equal(column(o, 'Cylinders').kind, 'categorical');
    assert.deepEqual(
      column(o, 'Cylinders').top?.map((t) => t.value),
      ['4', '8', '6', '3', '5'],
    );
  });

  it('estimates distinct counts past the exact cap (seattle-weather dates)', async () => {
    const p = await profileTable(await openPublic('seattle-weather'), { label: 'weather' });
    const date = column(p, 'date');
    assert.equal(date.kind, 'datetime');
    assert.equal(date.distinctExact, false);
    assert.ok(Math.abs(date.distinct - 1461) / 1461 < 0.05, `estimate ${date.distinct} for 1461`);
    assert.equal(column(p, 'precipitation').distinctExact, true);
  });

  it('drops all-missing and constant columns with the reason, reads booleans and NA tokens', async () => {
    const p = await profileTable(
      await csv('id,empty,same,flag,x,y\na,NA,1,yes,1.5,u\nb,,1,No,N/A,v\nc,null,1,YES,NaN,u\nd,N/A,1,,2,v\n'),
    );
    assert.deepEqual(
      p.columns.map((c) => [c.kind, c.missing, c.dropped ?? '']),
      [
        ['text', 0, 'identifier or free text: 4 distinct values'],
        ['constant', 4, 'all values are missing'],
        ['constant', 0, 'one value only (1)'],
        ['boolean', 1, ''],
        ['numeric', 2, ''],
        ['categorical', 0, ''],
      ],
    );
  });

  it('counts malformed rows (kept by the reader) in rows, names the first, and leaves them out of the statistics', async () => {
    const text = 'x,y\n1,a\n2\n3,b,extra\n4,a\n';
    const table = await readTable(Readable.from([Buffer.from(text)]), 'csv', {}, { keepMalformedRows: true });
    const p = await profileTable(table);
    assert.equal(p.rows, 4);
    assert.deepEqual(p.malformedRows, { count: 2, first: { row: 2, message: 'has 1 cell, the header has 2' } });
    assert.deepEqual(
      p.columns.map((c) => [c.name, c.min, c.max, c.distinct]),
      [
        ['x', 1, 4, 2],
        ['y', undefined, undefined, 1],
      ],
    );
    assert.ok(tableProfileSchema.safeParse(p).success);
  });

  it('profiles columns named like Object members ("constructor", "toString") by their values', async () => {
    const table = 'constructor,toString,y\n1,a,p\n2,b,q\n3,a,p\n4,b,q\n';
    const profile = await profileTable(await csv(table), { label: 'y' });
    assert.deepEqual(
      profile.columns.map((c) => [c.name, c.kind, c.overridden ?? false]),
      [
        ['constructor', 'numeric', false],
        ['toString', 'categorical', false],
        ['y', 'categorical', false],
      ],
    );
  });

  it('refuses a single-class label, regression on a text label, unknown columns, an ignored label', async () => {
    const reject = (p: Promise<unknown>, field: string) =>
      assert.rejects(p, (e: unknown) => e instanceof FieldError && e.field === field && e.status === 400);
    await reject(profileTable(await csv('x,y\n1,a\n2,a\n'), { label: 'y' }), 'label');
    await reject(profileTable(await openPublic('penguins'), { label: 'Species', task: 'regression' }), 'task');
    await reject(profileTable(await openPublic('penguins'), { label: 'Nope' }), 'label');
    await reject(profileTable(await openPublic('penguins'), { overrides: { Nope: 'ignore' } }), 'columns.Nope');
    const ignored = { label: 'Species', overrides: { Species: 'ignore' as const } };
    await reject(profileTable(await openPublic('penguins'), ignored), 'columns.Species');
  });
});
