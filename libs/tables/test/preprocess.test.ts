import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { FieldError, preprocessingSpecSchema } from '@tq/contracts';
import {
  decodeRegression,
  encodeRecords,
  fitPreprocessing,
  prepareTable,
  profileTable,
  readTable,
  RowEncoder,
  targetEncoder,
  TRAIN,
  VALIDATION,
  type Cell,
} from '@tq/tables';
import { nearestCentroidAccuracy, predict, r2, ridge } from './fit-helpers';
import { collect, openPublic, records } from './public-tables';

const fieldError = (field: string) => (e: unknown) => e instanceof FieldError && e.field === field;

describe('preprocessing', () => {
  it('penguins: stratified split, fitted on training rows, a width known before training, accuracy ≥ 0.95', async () => {
    const profile = await profileTable(await openPublic('penguins'), { label: 'Species' });
    const { spec, train, validation, unlabelled } = await prepareTable(() => openPublic('penguins'), {
      profile,
      validationSplit: 0.25,
      seed: 7,
    });
    preprocessingSpecSchema.parse(JSON.parse(JSON.stringify(spec)));
    assert.deepEqual(
      spec.steps.map((s) => s.name),
      ['Island', 'Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Body Mass (g)', 'Sex'],
    );
    assert.equal(spec.width, 4 + 4 * 1 + 4); // Island 3 + unknown, 4 numbers, Sex 3 + unknown
    assert.deepEqual(spec.target, {
      column: 'Species',
      task: 'classification',
      classes: ['Adelie', 'Chinstrap', 'Gentoo'],
    });
    assert.equal(unlabelled, 0);
    // Each class split in proportion: round(n / 4) of Adelie 152, Chinstrap 68, Gentoo 124.
    const perClass = [0, 1, 2].map((c) => validation.targets.filter((t) => t === c).length);
    assert.deepEqual(perClass, [38, 17, 31]);
    assert.equal(train.rows + validation.rows, 344);
    assert.ok(!train.features.some(Number.isNaN) && !validation.features.some(Number.isNaN));
    const accuracy = nearestCentroidAccuracy(train, validation, spec.width, 3);
    assert.ok(accuracy >= 0.95, `validation accuracy ${accuracy}`);
  });

  it('fits statistics on training rows only (mean or median imputation)', async () => {
    const profile = await profileTable(await openPublic('penguins'), { label: 'Species' });
    const roles = new Uint8Array(344).fill(VALIDATION);
    roles.fill(TRAIN, 0, 100);
    const mass = records('penguins')
      .slice(0, 100)
      .map((r) => r['Body Mass (g)'])
      .filter((v): v is number => typeof v === 'number');
    const mean = mass.reduce((s, v) => s + v, 0) / mass.length;
    const sorted = [...mass].sort((a, b) => a - b);
    const median = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    const step = async (impute: 'mean' | 'median') => {
      const spec = await fitPreprocessing(await openPublic('penguins'), { profile, roles, impute });
      return spec.steps.find((s) => s.name === 'Body Mass (g)');
    };
    const byMean = await step('mean');
    assert.ok(byMean?.kind === 'numeric' && Math.abs(byMean.mean - mean) < 1e-9 && byMean.fill === byMean.mean);
    assert.ok(
      Math.abs(byMean.mean - profile.columns.find((c) => c.name === 'Body Mass (g)')!.mean!) > 100,
      'the full-table mean differs',
    );
    const byMedian = await step('median');
    assert.ok(byMedian?.kind === 'numeric' && byMedian.fill === median && byMedian.mean === byMean.mean);
  });

  it('cars: regression in raw units with missing cells, the target standardized and mapped back, R² ≥ 0.8', async () => {
    const profile = await profileTable(await openPublic('cars'), {
      label: 'Miles_per_Gallon',
      overrides: { Cylinders: 'categorical' },
    });
    const { spec, train, validation, unlabelled } = await prepareTable(() => openPublic('cars'), {
      profile,
      validationSplit: 0.2,
      seed: 3,
    });
    assert.equal(unlabelled, 8);
    assert.deepEqual(spec.ignored, [{ name: 'Name', reason: 'identifier or free text: 311 distinct values' }]);
    assert.equal(spec.target.task, 'regression');
    if (spec.target.task !== 'regression') return;
    const w = ridge(train, spec.width);
    const mpg = decodeRegression(spec.target, predict(w, validation, spec.width));
    const truth = decodeRegression(spec.target, validation.targets);
    const score = r2(truth, mpg);
    assert.ok(score >= 0.8, `validation R² ${score}`);
    const encode = targetEncoder(spec.target);
    assert.ok(Math.abs(decodeRegression(spec.target, [encode(31.5, () => '')])[0]! - 31.5) < 1e-9);
  });

  it('encodes records by column name: nulls imputed, unseen categories counted, bad records named', async () => {
    const profile = await profileTable(await openPublic('penguins'), { label: 'Species' });
    const spec = await fitPreprocessing(await openPublic('penguins'), { profile });
    const record = {
      Island: 'Biscoe',
      'Beak Length (mm)': 46.1,
      'Beak Depth (mm)': null,
      'Flipper Length (mm)': 211,
      'Body Mass (g)': 4500,
      Sex: null,
    };
    const { features, unknown } = encodeRecords(spec, [record, { ...record, Island: 'Atlantis', Species: 'ignored' }]);
    assert.equal(features.length, 2 * spec.width);
    assert.deepEqual(unknown, { Island: 1 });
    assert.deepEqual([...features.subarray(0, 4)], [1, 0, 0, 0]); // Biscoe, Dream, Torgersen, unknown
    assert.deepEqual([...features.subarray(spec.width, spec.width + 4)], [0, 0, 0, 1]);
    assert.equal(features[5], 0, 'a missing number becomes the training mean, 0 once standardized');
    assert.deepEqual(
      [...features.subarray(8, 12)],
      [0, 0, 0, 1],
      'a missing category goes to the unknown / missing slot',
    );
    assert.throws(() => encodeRecords(spec, [{ ...record, Beak: 1 }]), fieldError('records.0.Beak'));
    const { Sex: _, ...noSex } = record;
    assert.throws(() => encodeRecords(spec, [record, noSex]), fieldError('records.1.Sex'));
    assert.throws(
      () => encodeRecords(spec, [{ ...record, 'Body Mass (g)': 'heavy' }]),
      fieldError('records.0.Body Mass (g)'),
    );
  });

  it('a record lacking a column named like an Object member ("toString") is missing it, not given a function', async () => {
    const text = 'toString,size,y\na,1,p\nb,2,q\na,3,p\nb,4,q\n';
    const open = async () => readTable(Readable.from([Buffer.from(text)]), 'csv');
    const profile = await profileTable(await open(), { label: 'y', overrides: { toString: 'categorical' as const } });
    const spec = await fitPreprocessing(await open(), { profile });
    assert.ok(spec.steps.some((s) => s.name === 'toString'));
    assert.throws(() => encodeRecords(spec, [{ size: 2 }]), fieldError('records.0.toString'));
  });

  it('names the row and column of a non-numeric value in a numeric column, and a missing required column', async () => {
    const profile = await profileTable(await openPublic('penguins'), { label: 'Species' });
    const spec = await fitPreprocessing(await openPublic('penguins'), { profile });
    const header = 'Island,Beak Length (mm),Beak Depth (mm),Flipper Length (mm),Body Mass (g),Sex';
    const text = `${header}\nDream,40,18,190,3500,MALE\nDream,40 mm,18,190,3500,MALE\n`;
    const raw = await readTable(Readable.from([Buffer.from(text)]), 'csv');
    const encoder = new RowEncoder(spec, raw.columns);
    const rows = await collect(raw);
    const out = new Float32Array(spec.width);
    encoder.encode(rows[0] as Cell[], out, 0, 1);
    assert.throws(() => encoder.encode(rows[1] as Cell[], out, 0, 2), fieldError('row 2, column "Beak Length (mm)"'));
    assert.throws(
      () =>
        new RowEncoder(
          spec,
          raw.columns.filter((c) => c !== 'Sex'),
        ),
      fieldError('columns'),
    );
  });
});
