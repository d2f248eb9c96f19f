/**
 * Request examples shown by /docs: runnable in order on a fresh system (train iris → version 1,
 * then compress, infer, predict it). Swagger UI would otherwise invent bodies from the schemas
 * (units 0, inputShape [0]) that the API refuses. The OpenAPI test parses each with its contract.
 */
export const TRAIN_EXAMPLE = {
  model: {
    name: 'iris',
    layers: [
      { type: 'dense', units: 16, activation: 'relu', inputShape: [4] },
      { type: 'dense', units: 3, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'iris' },
  fit: { epochs: 60, batchSize: 16, learningRate: 0.02, validationSplit: 0 },
};

export const COMPRESS_EXAMPLE = {
  source: { name: 'iris', version: 1 },
  steps: [{ prune: { sparsity: 0.5 } }, { quantize: { dtype: 'uint8' } }],
  gate: { maxAccuracyDrop: 0.05 },
};

export const INFER_EXAMPLE = {
  model: { name: 'iris', version: 1 },
  input: {
    instances: [
      [5.1, 3.5, 1.4, 0.2],
      [6.7, 3.0, 5.2, 2.3],
    ],
  },
};

export const PREDICT_EXAMPLE = { instances: [[5.1, 3.5, 1.4, 0.2]] };

/** A model trained on an uploaded table takes records by column name (null: a missing value, imputed). */
export const PREDICT_EXAMPLES = {
  instances: PREDICT_EXAMPLE,
  records: { records: [{ Island: 'Biscoe', 'Beak Length (mm)': 46.1, 'Body Mass (g)': 4500, Sex: null }] },
};

/** Explain a row: 64 trapezoid steps from the training means, the predicted class (the defaults spelled out). */
export const EXPLAIN_EXAMPLE = { instances: [[5.1, 3.5, 1.4, 0.2]], steps: 64, baseline: 'mean' };
export const EXPLAIN_EXAMPLES = {
  instances: EXPLAIN_EXAMPLE,
  records: {
    records: [{ Island: 'Biscoe', 'Beak Length (mm)': 46.1, 'Body Mass (g)': 4500, Sex: null }],
    steps: 128,
    baseline: 'zeros',
    target: 'Adelie',
  },
};
