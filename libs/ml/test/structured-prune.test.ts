import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { compressRequestSchema, FieldError, type LayerSpec } from '@tq/contracts';
import { buildModel, checkCompressRequest, flopsPerRow, initBackend, parameterCounts, structuredPrune } from '@tq/ml';

/**
 * Reference for structured pruning: the source with every removed unit's kernel slice and bias set
 * to zero. With relu after each pruned layer (and max pooling), a zeroed unit outputs 0 everywhere,
 * so it contributes nothing downstream: the rewritten smaller model must compute the same outputs.
 */
async function zeroedReference(source: tf.LayersModel, indices: Record<string, number[]>): Promise<tf.LayersModel> {
  const copy = await tf.models.modelFromJSON({
    modelTopology: source.toJSON(null, false) as unknown as tf.io.ModelJSON['modelTopology'],
  });
  copy.layers.forEach((layer, i) => {
    const weights = source.layers[i]!.getWeights();
    const keep = indices[layer.name];
    if (!keep) return layer.setWeights(weights);
    const units = weights[0]!.shape.at(-1)!;
    const mask = tf.tensor1d(Array.from({ length: units }, (_, j) => (keep.includes(j) ? 1 : 0)));
    layer.setWeights(weights.map((w) => tf.mul(w, mask)));
  });
  return copy;
}

/** Every kept unit's kernel L1 norm is at least every removed one's. */
function assertMostImportantKept(source: tf.LayersModel, indices: Record<string, number[]>): void {
  for (const [name, keep] of Object.entries(indices)) {
    const kernel = source.getLayer(name).getWeights()[0]!;
    const norms = tf
      .sum(
        tf.abs(kernel),
        kernel.shape.slice(0, -1).map((_, a) => a),
      )
      .arraySync() as number[];
    const kept = keep.map((j) => norms[j]!);
    const removed = norms.filter((_, j) => !keep.includes(j));
    if (removed.length > 0) assert.ok(Math.min(...kept) >= Math.max(...removed), name);
  }
}

describe('structured pruning (property: same outputs as the source with the removed units zeroed)', () => {
  before(() => initBackend());

  const cases: Array<[string, LayerSpec[], number[]]> = [
    [
      'MLP',
      [
        { type: 'dense', units: 20, activation: 'relu', inputShape: [6] },
        { type: 'dropout', rate: 0.1 },
        { type: 'dense', units: 9, activation: 'relu' },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
      [6],
    ],
    [
      'CNN',
      [
        { type: 'conv2d', filters: 6, kernelSize: 3, activation: 'relu', inputShape: [10, 10, 2] },
        { type: 'maxPooling2d', poolSize: 2 },
        { type: 'conv2d', filters: 8, kernelSize: 2, activation: 'relu', padding: 'same' },
        { type: 'flatten' },
        { type: 'dense', units: 12, activation: 'relu' },
        { type: 'dense', units: 4, activation: 'softmax' },
      ],
      [10, 10, 2],
    ],
  ];
  for (const [what, layers, shape] of cases)
    for (const sparsity of [0.25, 0.5, 0.9])
      it(`${what}, ${sparsity} of each layer's units`, async () => {
        const source = buildModel(layers, { seed: 7, task: 'classification' });
        const { model, kept, indices } = await structuredPrune(source, sparsity, 'f');
        const reference = await zeroedReference(source, indices);
        const x = tf.randomNormal([16, ...shape], 0, 1, 'float32', 3);
        const [got, want] = [model.predict(x) as tf.Tensor, reference.predict(x) as tf.Tensor];
        const worst = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!;
        assert.ok(worst < 1e-5, `outputs differ by ${worst}`);
        assertMostImportantKept(source, indices);
        // Every layer but the output lost round(sparsity × units) units; parameters and FLOPs fell with them.
        for (const [name, [n, before]] of Object.entries(kept))
          assert.equal(n, Math.max(1, Math.round((1 - sparsity) * before)), name);
        assert.equal(
          Object.keys(kept).length,
          layers.filter((l) => l.type === 'dense' || l.type === 'conv2d').length - 1,
        );
        assert.ok(parameterCounts(model).parameters < parameterCounts(source).parameters);
        assert.ok(flopsPerRow(model) < flopsPerRow(source));
        tf.dispose([x, got, want]);
        [source, model, reference].forEach((m) => m.dispose());
      });

  it('refuses up front a layer it cannot rewrite, naming the step and the layer', () => {
    const req = compressRequestSchema.parse({
      source: { name: 'm', version: 1 },
      steps: [{ prune: { sparsity: 0.5, structured: true } }],
    });
    const meta = {
      name: 'm',
      version: 1,
      createdAt: '',
      inputShape: [8],
      featureCount: 8,
      classes: ['a', 'b'],
      task: 'classification' as const,
      weightDtype: 'float32',
      artifacts: {},
      lineage: { kind: 'trained' as const, dataset: { builtin: 'iris' } },
      layers: [
        { type: 'dense', units: 8, activation: 'relu', inputShape: [8] },
        { type: 'reshape', targetShape: [2, 4] },
        { type: 'flatten' },
        { type: 'dense', units: 2, activation: 'softmax' },
      ] as LayerSpec[],
    };
    assert.throws(
      () => checkCompressRequest(req, meta),
      (err: unknown) =>
        err instanceof FieldError &&
        err.field === 'steps.0.prune.structured' &&
        /layer 1 \(reshape\)/.test(err.message),
    );
  });
});
