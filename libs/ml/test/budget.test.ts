import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { TooLargeError, type LayerSpec } from '@tq/contracts';
import { buildModel, checkBudgets, countParams, initBackend, ModelSpecError, type Budgets } from '@tq/ml';

const BUDGETS: Budgets = {
  MAX_MODEL_PARAMS: 1000,
  MAX_TRAIN_WORK: 100,
  MAX_INFER_INSTANCES: 2,
  MAX_INFER_VALUES: 5,
  MAX_CLASSES: 5,
};

const MODELS: Record<string, LayerSpec[]> = {
  mlp: [
    { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
    { type: 'dense', units: 3, activation: 'softmax', useBias: false },
  ],
  cnn: [
    { type: 'reshape', targetShape: [8, 8, 1], inputShape: [64] },
    { type: 'conv2d', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' },
    { type: 'batchNormalization' },
    { type: 'maxPooling2d', poolSize: 2 },
    { type: 'conv2d', filters: 6, kernelSize: [2, 3], useBias: false },
    { type: 'flatten' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ],
  'dense on an image': [
    { type: 'dense', units: 5, inputShape: [2, 3] },
    { type: 'flatten' },
    { type: 'dense', units: 2, activation: 'softmax' },
  ],
};

function tooLarge(fn: () => void, field: string, reason: RegExp): void {
  assert.throws(
    fn,
    (err: unknown) =>
      err instanceof TooLargeError && err.status === 413 && err.field === field && reason.test(err.reason),
  );
}

describe('budgets', () => {
  before(() => initBackend());

  it('counts the parameters tfjs allocates, for every weighted layer type', () => {
    for (const [name, layers] of Object.entries(MODELS)) {
      const model = buildModel(layers, { seed: 1 });
      assert.equal(countParams(layers), model.countParams(), name);
      model.dispose();
    }
  });

  it('refuses each budget with 413 naming the field, the figure, the limit and its variable', () => {
    const big: LayerSpec[] = [
      { type: 'dense', units: 300, inputShape: [3] },
      { type: 'dense', units: 2, activation: 'softmax' },
    ];
    tooLarge(
      () => checkBudgets({ layers: { spec: big, field: 'model.layers' } }, BUDGETS),
      'model.layers',
      /1802 parameters exceed the limit of 1000 \(MAX_MODEL_PARAMS\)/,
    );
    tooLarge(
      () => checkBudgets({ train: { rows: 11, epochs: 10 } }, BUDGETS),
      'fit.epochs',
      /10 epochs × 11 rows = 110 .*\(MAX_TRAIN_WORK\)/,
    );
    tooLarge(
      () => checkBudgets({ instances: [[1], [2], [3]] }, BUDGETS),
      'input.instances',
      /3 rows .*\(MAX_INFER_INSTANCES\)/,
    );
    tooLarge(
      () =>
        checkBudgets(
          {
            instances: [
              [1, 2, 3],
              [4, 5, 6],
            ],
          },
          BUDGETS,
        ),
      'input.instances',
      /6 values .*\(MAX_INFER_VALUES\)/,
    );
    tooLarge(
      () => checkBudgets({ classes: { count: 1_000_000, field: 'dataset.id' } }, BUDGETS),
      'dataset.id',
      /1000000 classes exceed the limit of 5 \(MAX_CLASSES\)/,
    );
    // A layer stack of 10^9 parameters: counted from the shapes, nothing allocated.
    tooLarge(
      () =>
        checkBudgets(
          {
            layers: {
              spec: [
                { type: 'dense', units: 100_000, inputShape: [10_000] },
                { type: 'dense', units: 2, activation: 'softmax' },
              ],
              field: 'model.layers',
            },
          },
          { ...BUDGETS, MAX_MODEL_PARAMS: 50_000_000 },
        ),
      'model.layers',
      /1000300002 parameters exceed the limit of 50000000 \(MAX_MODEL_PARAMS\)/,
    );
    checkBudgets(
      {
        layers: { spec: MODELS.mlp!, field: 'model.layers' },
        train: { rows: 10, epochs: 10 },
        instances: [[1, 2], [3]],
        classes: { count: 5, field: 'dataset.id' },
      },
      BUDGETS,
    );
  });

  it('reports a layer stack that cannot be built as a ModelSpecError (400) first', () => {
    const bad: LayerSpec[] = [
      { type: 'dense', units: 6, inputShape: [4] },
      { type: 'reshape', targetShape: [4, 2] },
    ];
    assert.throws(
      () => checkBudgets({ layers: { spec: bad, field: 'model.layers' } }, BUDGETS),
      (err: unknown) => err instanceof ModelSpecError && err.field === 'model.layers.1.targetShape',
    );
  });
});
