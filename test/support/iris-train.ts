/**
 * The small train job of many tests: the built-in iris table, a 4 → 8 → 3 network, `fit` as given
 * (the schema's defaults for the rest).
 */
export const irisTrain = (fit: Record<string, unknown>) => ({
  model: {
    name: 'iris',
    layers: [
      { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
      { type: 'dense', units: 3, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'iris' },
  fit,
});
