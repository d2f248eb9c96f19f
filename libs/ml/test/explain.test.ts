import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { featureMeans, initBackend, integratedGradients } from '@tq/ml';

/** f(x) = w·x + b as a one-unit dense layer with the given weights. */
function linearModel(w: number[], b: number): tf.LayersModel {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 1, inputShape: [w.length], weights: [tf.tensor2d(w, [w.length, 1]), tf.tensor1d([b])] }),
    ],
  });
  return model;
}

/** A small seeded MLP with a softmax over 3 classes: nonlinear, so the quadrature has an error to shrink. */
function mlp(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({
        units: 16,
        inputShape: [5],
        activation: 'tanh',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 1 }),
      }),
      tf.layers.dense({ units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
      tf.layers.dense({
        units: 3,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }),
      }),
    ],
  });
}

describe('integrated gradients', () => {
  before(async () => {
    await initBackend();
  });

  it('of a linear model from a zero baseline are w ⊙ x exactly, at any step count', () => {
    const w = [0.5, -2, 3, 0.25];
    const x = Float32Array.from([1, 2, -1, 4]);
    const model = linearModel(w, 0.7);
    for (const steps of [1, 7, 64]) {
      const ig = integratedGradients(model, x, new Float32Array(4), steps, 0);
      const expected = w.map((wi, i) => wi * x[i]!);
      ig.attributions.forEach((a, i) =>
        assert.ok(Math.abs(a - expected[i]!) < 1e-5, `feature ${i}: ${a} vs ${expected[i]}`),
      );
      assert.ok(Math.abs(ig.value - (0.5 - 4 - 3 + 1 + 0.7)) < 1e-5, `f(x) ${ig.value}`);
      assert.ok(Math.abs(ig.baselineValue - 0.7) < 1e-6, `f(0) ${ig.baselineValue}`);
      assert.ok(Math.abs(ig.completenessGap) < 1e-5, `gap ${ig.completenessGap}`);
    }
    model.dispose();
  });

  it('of a linear model from another baseline are w ⊙ (x − baseline)', () => {
    const model = linearModel([1, -1], 0);
    const ig = integratedGradients(model, Float32Array.from([3, 5]), Float32Array.from([1, 1]), 4, 0);
    assert.deepEqual(Array.from(ig.attributions), [2, -4]);
    model.dispose();
  });

  it('close the completeness gap on an MLP as the steps grow', () => {
    const model = mlp();
    const x = Float32Array.from([1.5, -2, 0.5, 3, -1]);
    const zero = new Float32Array(5);
    const gaps = [1, 4, 16, 128].map((steps) =>
      Math.abs(integratedGradients(model, x, zero, steps, 2).completenessGap),
    );
    // The function must be curved enough for one step to be visibly wrong, else the test proves nothing.
    assert.ok(gaps[0]! > 1e-3, `one step's gap ${gaps[0]} is too small to test convergence`);
    for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i]! < gaps[i - 1]!, `gaps ${gaps.join(', ')} do not shrink`);
    assert.ok(gaps[3]! < 1e-3, `128 steps leave a gap of ${gaps[3]}`);
    model.dispose();
  });

  it('take a plain function, keep no tensors, and reject a bad target or step count', () => {
    const before = tf.memory().numTensors;
    const square = (batch: tf.Tensor): tf.Tensor => batch.square().sum(1, true);
    const ig = integratedGradients(square, Float32Array.from([1, 2]), new Float32Array(2), 256, 0);
    // ∫ 2αx dα · x = x²: the attribution of each feature of Σx².
    assert.ok(
      Math.abs(ig.attributions[0]! - 1) < 1e-4 && Math.abs(ig.attributions[1]! - 4) < 1e-4,
      `${ig.attributions.join(', ')}`,
    );
    assert.throws(
      () => integratedGradients(square, Float32Array.from([1, 2]), new Float32Array(2), 4, 1),
      /target must be an output index in \[0, 1\)/,
    );
    assert.throws(
      () => integratedGradients(square, Float32Array.from([1, 2]), new Float32Array(2), 0, 0),
      /steps must be a positive integer/,
    );
    assert.throws(
      () => integratedGradients(square, Float32Array.from([1, 2]), new Float32Array(3), 4, 0),
      /baseline has 3 features/,
    );
    assert.equal(tf.memory().numTensors, before, 'tensors left behind');
  });

  it('take an image model (input [h, w, c], a conv layer) with flat rows: completeness holds', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [4, 4, 1],
          filters: 2,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }),
          biasInitializer: tf.initializers.constant({ value: 0.1 }),
        }),
        tf.layers.flatten(),
        tf.layers.dense({
          units: 2,
          activation: 'softmax',
          kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }),
        }),
      ],
    });
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i + 1));
    const ig = integratedGradients(model, x, new Float32Array(16), 128, 1);
    assert.equal(ig.attributions.length, 16);
    assert.ok(Math.abs(ig.value - ig.baselineValue) > 1e-4, 'something to explain');
    assert.ok(Math.abs(ig.completenessGap) < 1e-3, `gap ${ig.completenessGap}`);
    assert.throws(
      () => integratedGradients(model, new Float32Array(15), new Float32Array(15), 4, 0),
      /takes 16 features/,
    );
    model.dispose();
  });

  it('feature means average each column', () => {
    assert.deepEqual(featureMeans(Float32Array.from([1, 10, 3, 20]), 2, 2), [2, 15]);
    assert.deepEqual(featureMeans(new Float32Array(0), 0, 2), [0, 0]);
  });
});
