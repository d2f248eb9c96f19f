import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LayerSpec } from '@tq/contracts';
import { checkFitsData, layersIo, ModelSpecError, versionIo, withInputShape } from '@tq/ml';

const iris: LayerSpec[] = [
  { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
  { type: 'dense', units: 3, activation: 'softmax' },
];
const irisData = { featureCount: 4, classCount: 3, rows: 150 };
const meta = { inputShape: [4], featureCount: 4, classes: ['a', 'b', 'c'] };

function specError(fn: () => unknown, field: string, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ModelSpecError, `expected ModelSpecError, got ${String(err)}`);
    assert.equal(err.field, field);
    assert.match(err.reason, reason);
    return true;
  });
}

/** The pure fit check the API runs at submission (no tfjs model is built). */
describe('checkFitsData', () => {
  it('accepts a layer list and a registered version that fit the data', () => {
    checkFitsData(layersIo(iris), irisData, { validationSplit: 0.1 });
    checkFitsData(versionIo(meta, 'model.from'), irisData, { validationSplit: 0 });
  });

  it('names the first layer for a feature mismatch and the last layer units for a class mismatch', () => {
    specError(
      () => checkFitsData(layersIo(iris), { ...irisData, featureCount: 5 }),
      'model.layers.0.inputShape',
      /takes \[4\] \(4 values per row\) .* 5 features/,
    );
    specError(
      () => checkFitsData(layersIo(iris), { ...irisData, classCount: 2 }),
      'model.layers.1.units',
      /outputs 3 values .* 2 classes/,
    );
  });

  it('names the last layer itself when it is an activation layer (it has no units)', () => {
    const layers: LayerSpec[] = [
      { type: 'dense', units: 3, inputShape: [4] },
      { type: 'activation', activation: 'softmax' },
    ];
    specError(() => checkFitsData(layersIo(layers), { ...irisData, classCount: 2 }), 'model.layers.1', /3 values/);
  });

  it('counts the values of an image input shape, and checks the classifier rules first', () => {
    const image: LayerSpec[] = [
      { type: 'flatten', inputShape: [2, 2, 1] },
      { type: 'dense', units: 3, activation: 'softmax' },
    ];
    checkFitsData(layersIo(image), irisData);
    specError(() => layersIo([{ type: 'dense', units: 3, inputShape: [4] }]), 'model.layers.0.activation', /softmax/);
  });

  it('names the version field for a fine-tuned model with other features or classes', () => {
    specError(
      () => checkFitsData(versionIo(meta, 'model.from'), { ...irisData, featureCount: 2 }),
      'model.from',
      /takes \[4\] .* 2 features/,
    );
    specError(
      () => checkFitsData(versionIo(meta, 'model.from'), { ...irisData, classCount: 2 }),
      'model.from',
      /outputs 3 values .* 2 classes/,
    );
  });

  it('refuses a validationSplit that leaves no training rows, and only then', () => {
    const tiny = { featureCount: 4, classCount: 3, rows: 2 };
    specError(
      () => checkFitsData(layersIo(iris), tiny, { validationSplit: 0.6 }),
      'fit.validationSplit',
      /no training rows out of 2/,
    );
    checkFitsData(layersIo(iris), tiny, { validationSplit: 0.5 });
    checkFitsData(layersIo(iris), tiny);
  });
});

/** The same checks for a regression (issue 8): one linear output, no softmax, a prepared validation split. */
describe('checkFitsData by task', () => {
  const mpg: LayerSpec[] = [
    { type: 'dense', units: 8, activation: 'relu', inputShape: [10] },
    { type: 'dense', units: 1 },
  ];
  const table = { featureCount: 10, classCount: 0, rows: 398, task: 'regression' as const };

  it('accepts one linear output and names units otherwise', () => {
    checkFitsData(layersIo(mpg, 'model.layers', 'regression'), table, { validationSplit: 0.2 });
    const two: LayerSpec[] = [mpg[0]!, { type: 'dense', units: 2 }];
    specError(
      () => checkFitsData(layersIo(two, 'model.layers', 'regression'), table),
      'model.layers.1.units',
      /regression outputs 1/,
    );
    specError(
      () => checkFitsData(versionIo({ ...meta, task: 'classification' }, 'model.from'), { ...table, featureCount: 4 }),
      'model.from',
      /regression outputs 1/,
    );
    checkFitsData(
      versionIo({ inputShape: [10], featureCount: 10, classes: [], task: 'regression' }, 'model.from'),
      table,
    );
  });

  it('refuses a softmax at the end of a regression and requires one for a classifier', () => {
    const softmax: LayerSpec[] = [mpg[0]!, { type: 'dense', units: 1, activation: 'softmax' }];
    specError(() => layersIo(softmax, 'model.layers', 'regression'), 'model.layers.1.activation', /linear/);
    specError(() => layersIo(mpg), 'model.layers.1.activation', /softmax/);
  });

  it('fills a missing first inputShape with the width only when asked, and counts training rows of a prepared split', () => {
    const bare: LayerSpec[] = [{ type: 'dense', units: 1 }];
    specError(() => layersIo(bare, 'model.layers', 'regression'), 'model.layers.0.inputShape', /declare inputShape/);
    assert.deepEqual(withInputShape(bare, 10)[0]?.inputShape, [10]);
    assert.deepEqual(withInputShape(mpg, 12)[0]?.inputShape, [10]);
    specError(
      () =>
        checkFitsData(
          layersIo(mpg, 'model.layers', 'regression'),
          { ...table, validationRows: 398 },
          { validationSplit: 0.2 },
        ),
      'fit.validationSplit',
      /no training rows/,
    );
  });
});
