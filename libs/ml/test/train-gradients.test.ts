import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { applyGradients, computeGradients, createOptimizer, initBackend, trainableVariables } from '@tq/ml';

function tinyModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 5,
      activation: 'tanh',
      inputShape: [3],
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  m.add(
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  );
  return m;
}

describe('computeGradients', () => {
  before(() => initBackend());
  const xs = [
    [0.1, -0.4, 0.9],
    [1.2, 0.3, -0.7],
    [-0.5, 0.8, 0.2],
    [0.0, -1.1, 0.6],
  ];
  const ys = [0, 2, 1, 2];

  it('returns the mean cross-entropy and one gradient per trainable variable, keyed by name', () => {
    const model = tinyModel();
    const x = tf.tensor2d(xs);
    const y = tf.tensor1d(ys, 'int32');
    const probs = (model.predict(x) as tf.Tensor).arraySync() as number[][];
    const expected = -ys.reduce((s, c, i) => s + Math.log(probs[i]![c]!), 0) / ys.length;
    const { loss, grads } = computeGradients(model, x, y);
    assert.ok(Math.abs(loss.dataSync()[0]! - expected) < 1e-5, `loss ${loss.dataSync()[0]} vs ${expected}`);
    assert.deepEqual(
      Object.keys(grads),
      trainableVariables(model).map((v) => v.name),
    );
    for (const v of trainableVariables(model)) assert.deepEqual(grads[v.name]!.shape, v.shape);
    tf.dispose([x, y, loss, grads]);
    model.dispose();
  });

  it('matches a finite-difference gradient of the loss', () => {
    const model = tinyModel();
    const x = tf.tensor2d(xs);
    const y = tf.tensor1d(ys, 'int32');
    const { loss, grads } = computeGradients(model, x, y);
    const bias = trainableVariables(model)[1]!; // first layer's bias, 5 elements
    const analytic = grads[bias.name]!.dataSync();
    const base = bias.dataSync().slice();
    const h = 1e-2;
    for (let i = 0; i < base.length; i++) {
      const lossAt = (delta: number): number => {
        const shifted = base.slice();
        shifted[i]! += delta;
        bias.assign(tf.tensor1d(shifted));
        const r = computeGradients(model, x, y);
        const value = r.loss.dataSync()[0]!;
        tf.dispose([r.loss, r.grads]);
        return value;
      };
      const numeric = (lossAt(h) - lossAt(-h)) / (2 * h);
      assert.ok(Math.abs(numeric - analytic[i]!) < 2e-3, `d/dbias[${i}]: numeric ${numeric} analytic ${analytic[i]}`);
    }
    tf.dispose([x, y, loss, grads]);
    model.dispose();
  });

  for (const optimizer of ['sgd', 'momentum', 'adam', 'rmsprop', 'adagrad'] as const) {
    it(`${optimizer}: repeated steps lower the loss and leak no tensors`, () => {
      const model = tinyModel();
      const x = tf.tensor2d(xs);
      const y = tf.tensor1d(ys, 'int32');
      const opt = createOptimizer({ optimizer, learningRate: optimizer === 'sgd' ? 0.5 : 0.05 });
      const losses: number[] = [];
      let baseline = 0;
      for (let step = 0; step < 20; step++) {
        if (step === 1) baseline = tf.memory().numTensors; // after the optimizer made its slots
        const { loss, grads } = computeGradients(model, x, y);
        losses.push(loss.dataSync()[0]!);
        applyGradients(opt, grads);
        tf.dispose([loss, grads]);
      }
      assert.equal(tf.memory().numTensors, baseline);
      assert.ok(losses[19]! < losses[0]! * 0.8, `${optimizer}: ${losses[0]} -> ${losses[19]}`);
      opt.dispose();
      tf.dispose([x, y]);
      model.dispose();
    });
  }
});
