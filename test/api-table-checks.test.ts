import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { ConflictError, FieldError, trainRequestSchema, type DatasetInfo } from '@tq/contracts';
import { checkFitsData, layersIo } from '@tq/ml';
import { estimatedWidth, tableTrainFit } from '../apps/api/src/jobs/table-train-checks';
import { publicTableDatasets } from '../libs/jobs/test/table-fixtures';
import { loadTrainingData } from '@tq/tables';

const ID = { cars: randomUUID(), penguins: randomUUID() };
const train = (id: string, layers: object[], over: object = {}) =>
  trainRequestSchema.parse({ model: { name: 'm', layers }, dataset: { id }, ...over });
const hidden = { type: 'dense', units: 8, activation: 'relu' };

/**
 * The API's submission checks for a train request on an uploaded table (SubmissionChecks runs
 * tableTrainFit, then checkFitsData on what it returns): status, task against the label, output
 * units by task; the input width is left to the worker, which knows it once the spec is fitted.
 */
describe('submission checks on a table', () => {
  let cars: DatasetInfo;
  let penguins: DatasetInfo;
  before(async () => {
    const tables = await publicTableDatasets({
      [ID.cars]: { table: 'cars', labelColumn: 'Miles_per_Gallon' },
      [ID.penguins]: { table: 'penguins', labelColumn: 'Species' },
    });
    [cars, penguins] = await Promise.all([tables.get(ID.cars), tables.get(ID.penguins)]);
  });
  const check = (req: ReturnType<typeof train>, info: DatasetInfo): void => {
    const { task, data, layers } = tableTrainFit(req, info, info.profile!);
    checkFitsData(layersIo(layers!, 'model.layers', task), data, req.fit);
  };

  it('accepts layers without inputShape and checks the output units by task', () => {
    check(train(ID.cars, [hidden, { type: 'dense', units: 1 }]), cars);
    check(train(ID.penguins, [hidden, { type: 'dense', units: 3, activation: 'softmax' }]), penguins);
    assert.throws(
      () => check(train(ID.penguins, [hidden, { type: 'dense', units: 2, activation: 'softmax' }]), penguins),
      (e: unknown) => e instanceof FieldError && e.field === 'model.layers.1.units',
    );
    assert.throws(
      () => check(train(ID.cars, [hidden, { type: 'dense', units: 1, activation: 'softmax' }]), cars),
      (e: unknown) => e instanceof FieldError && e.field === 'model.layers.1.activation',
    );
  });

  it('refuses regression on a text label, a loss of the other task, and a table not ready', () => {
    const reg = train(ID.penguins, [hidden, { type: 'dense', units: 1 }], { task: 'regression' });
    assert.throws(
      () => check(reg, penguins),
      (e: unknown) => e instanceof FieldError && e.field === 'task',
    );
    const mse = train(ID.penguins, [hidden, { type: 'dense', units: 3, activation: 'softmax' }], {
      fit: { loss: 'mse' },
    });
    assert.throws(
      () => check(mse, penguins),
      (e: unknown) => e instanceof FieldError && e.field === 'fit.loss',
    );
    const ok = train(ID.cars, [hidden, { type: 'dense', units: 1 }]);
    assert.throws(
      () => check(ok, { ...cars, status: 'profiling' }),
      (e: unknown) => e instanceof ConflictError && e.field === 'dataset.id',
    );
    const malformedRows = { count: 2, first: { row: 7, message: 'has 3 cells, the header has 9' } };
    assert.throws(
      () => check(ok, { ...cars, profile: { ...cars.profile!, malformedRows } }),
      (e: unknown) => e instanceof FieldError && e.field === 'dataset.id' && /row 7, has 3 cells/.test(e.message),
    );
  });

  it('counts the classes of a classification on a label profiled as a regression target', () => {
    const mpg = cars.profile!.columns.find((c) => c.name === 'Miles_per_Gallon')!;
    assert.equal(cars.task, 'regression');
    assert.ok(mpg.distinctExact && mpg.distinct > 100, `${mpg.distinct} distinct values`);
    const classify = (units: number) =>
      train(ID.cars, [hidden, { type: 'dense', units, activation: 'softmax' }], { task: 'classification' });
    assert.throws(
      () => check(classify(3), cars),
      (e: unknown) =>
        e instanceof FieldError && e.field === 'model.layers.1.units' && e.reason.includes(`${mpg.distinct} classes`),
    );
    check(classify(mpg.distinct), cars);
    // Over the profile's exact count (1,000 values): too many classes, whatever the units.
    const estimated = { ...mpg, distinct: 1500, distinctExact: false };
    const many = {
      ...cars,
      profile: { ...cars.profile!, columns: cars.profile!.columns.map((c) => (c === mpg ? estimated : c)) },
    };
    assert.throws(
      () => check(classify(1500), many),
      (e: unknown) => e instanceof FieldError && e.field === 'task' && /over 1500 classes/.test(e.reason),
    );
  });

  it('refuses column overrides naming no column, ignoring the label or every input, or given when fine-tuning', () => {
    const layers = [hidden, { type: 'dense', units: 3, activation: 'softmax' }];
    const allIgnored = Object.fromEntries(penguins.profile!.columns.map((c) => [c.name, 'ignore']));
    delete allIgnored.Species;
    const cases: Array<[object, string]> = [
      [{ columns: { Nope: 'ignore' } }, 'columns.Nope'],
      [{ columns: { Species: 'ignore' } }, 'columns.Species'],
      [{ columns: allIgnored }, 'columns'],
      [{ columns: { Sex: 'ignore' }, model: { name: 'm', from: { name: 'm', version: 1 } } }, 'columns'],
    ];
    for (const [over, field] of cases) {
      assert.throws(
        () => check(train(ID.penguins, layers, over), penguins),
        (e: unknown) => e instanceof FieldError && e.field === field,
        field,
      );
    }
  });

  it('estimates the width from the profile no lower than the fitted one', async () => {
    const req = train(ID.cars, [hidden, { type: 'dense', units: 1 }]);
    const tables = await publicTableDatasets({ [ID.cars]: { table: 'cars', labelColumn: 'Miles_per_Gallon' } });
    const data = await loadTrainingData(req, { datasets: tables });
    assert.ok(estimatedWidth(cars.profile!) >= data.featureCount);
  });
});
