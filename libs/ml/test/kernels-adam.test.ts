import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, on, rng, type Setup } from './kernels-helpers';

/**
 * The fused Adam update (TQFusedAdam, routed from tf.AdamOptimizer) against stock tfjs Adam on the
 * cpu backend: same starting weights and gradients must give the same weights and optimizer slots
 * (checkpoint names and values) and leave no tensors behind.
 * Tolerance (relative to scale): 1e-5 where only the update differs (the fused loop rounds once per
 * element, stock after every op). Training a model on wasm against cpu also differs in matmul
 * rounding, and Adam's normalised step turns near-zero gradient noise into lr-sized moves, so that
 * end-to-end check uses lr 1e-3 and 1e-4.
 */
const STEPS = 6;
type Slots = {
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[];
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[];
};
interface Run {
  weights: Float32Array[];
  slots: { name: string; data: Float32Array }[];
  leaked: number;
}

/** Runs STEPS Adam steps on `vars` with gradients from `gradsFor`, returning weights, slots and the tensor balance. */
function adamRun(vars: tf.Variable[], lr: number, gradsFor: (step: number) => tf.NamedTensorMap): Run {
  const optimizer: tf.Optimizer = tf.train.adam(lr);
  const before = tf.memory().numTensors;
  for (let s = 0; s < STEPS; s++) {
    const grads = gradsFor(s);
    optimizer.applyGradients(grads);
    tf.dispose(grads);
  }
  // Two slots per variable are created on the first step; everything else must be freed.
  const leaked = tf.memory().numTensors - before - 2 * vars.length;
  const slots = optimizer as unknown as Slots;
  const result = {
    weights: vars.map((v) => v.dataSync() as Float32Array),
    slots: [...slots.accumulatedFirstMoment, ...slots.accumulatedSecondMoment].map((s) => ({
      name: s.originalName.replace(/\d+/g, '#'),
      data: s.variable.dataSync() as Float32Array,
    })),
    leaked,
  };
  optimizer.dispose();
  return result;
}

function randomGradients(seed: number, lr: number): Run {
  const r = rng(seed);
  const shapes = [[30, 17], [17], [17, 5], [5]];
  const vars = shapes.map((s) => tf.variable(tf.tensor(r.data(tf.util.sizeFromShape(s)), s)));
  const run = adamRun(vars, lr, (step) =>
    Object.fromEntries(
      vars.map((v, i) => {
        // Gradients of mixed magnitudes, some exactly zero, as real layers produce.
        const g = r.data(v.size).map((x, j) => ((j + step + i) % 7 === 0 ? 0 : x * 10 ** r.int(-4, 1)));
        return [v.name, tf.tensor(g, v.shape)];
      }),
    ),
  );
  tf.dispose(vars);
  return run;
}

function mlp(seed: number, lr: number): Run {
  const r = rng(seed);
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 9, inputShape: [12], activation: 'relu' }),
      tf.layers.dense({ units: 7, activation: 'relu' }),
      tf.layers.dense({ units: 4, activation: 'softmax' }),
    ],
  });
  model.setWeights(model.getWeights().map((w) => tf.tensor(r.data(w.size), w.shape)));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const run = adamRun(vars, lr, () =>
    tf.tidy(() => {
      const x = tf.tensor(r.data(16 * 12), [16, 12]);
      const y = tf.oneHot(
        tf.tensor1d(
          Array.from({ length: 16 }, () => r.int(0, 3)),
          'int32',
        ),
        4,
      );
      return tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor), vars).grads;
    }),
  );
  model.dispose();
  return run;
}

function assertSameRun(got: Run, want: Run, tol: number, label: string): void {
  assert.equal(got.weights.length, want.weights.length);
  got.weights.forEach((w, i) => assertClose(w, want.weights[i]!, tol, `${label} weight ${i}`));
  assert.deepEqual(
    got.slots.map((s) => s.name),
    want.slots.map((s) => s.name),
  );
  got.slots.forEach((s, i) => assertClose(s.data, want.slots[i]!.data, tol, `${label} slot ${s.name}`));
  assert.equal(got.leaked, 0, `${label}: tensors left behind by the optimizer`);
}

describe('fused Adam', () => {
  for (const setup of ['wasm-fast', 'cpu-fast'] as const satisfies Setup[]) {
    it(`${setup}: same weights and slots as stock Adam for the same gradients`, async () => {
      for (const [seed, lr] of [
        [31, 1e-3],
        [32, 0.05],
      ] as const) {
        assertSameRun(
          await on(setup, () => randomGradients(seed, lr)),
          await on('cpu-stock', () => randomGradients(seed, lr)),
          1e-5,
          `seed ${seed} lr ${lr}`,
        );
      }
    });
  }

  it('cpu-fast: an MLP trains to the same weights as with stock Adam', async () => {
    assertSameRun(await on('cpu-fast', () => mlp(33, 0.05)), await on('cpu-stock', () => mlp(33, 0.05)), 1e-5, 'mlp');
  });

  it('wasm-fast: an MLP trains to the same weights as on cpu with stock kernels', async () => {
    assertSameRun(await on('wasm-fast', () => mlp(34, 1e-3)), await on('cpu-stock', () => mlp(34, 1e-3)), 1e-4, 'mlp');
  });

  it('the fused kernel is what runs on a fast backend', async () => {
    const kernels = await on('wasm-fast', async () => {
      const v = tf.variable(tf.ones([3]));
      const opt: tf.Optimizer = tf.train.adam(0.1);
      const g = tf.ones([3]);
      const profile = await tf.profile(() => opt.applyGradients({ [v.name]: g }));
      tf.dispose([v, g]);
      opt.dispose();
      return profile.kernels.map((k) => k.name);
    });
    assert.ok(kernels.includes('TQFusedAdam'), `kernels run: ${kernels.join(', ')}`);
    assert.ok(!kernels.includes('Sqrt'), `stock Adam arithmetic ran as well: ${kernels.join(', ')}`);
  });
});
