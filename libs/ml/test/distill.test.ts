import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { distillationLoss, initBackend, regressionDistillationLoss, sparseCategoricalCrossentropy } from '@tq/ml';

/** The loss written out row by row in plain numbers: the reference the tensor version must match. */
function reference(student: number[][], teacher: number[][], labels: number[], t: number, alpha: number): number {
  const soft = (p: number[]) => {
    const z = p.map((v) => Math.log(Math.max(v, 1e-7)) / t);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  let kl = 0;
  let ce = 0;
  student.forEach((s, r) => {
    const [ps, pt] = [soft(s), soft(teacher[r]!)];
    kl += pt.reduce((acc, v, k) => acc + v * (Math.log(v) - Math.log(ps[k]!)), 0);
    ce -= Math.log(Math.min(Math.max(s[labels[r]!]!, 1e-7), 1 - 1e-7));
  });
  const n = student.length;
  return (alpha * ce) / n + ((1 - alpha) * t * t * kl) / n;
}

describe('distillation loss (property: matches the loss written out, over random rows)', () => {
  before(() => initBackend());
  const randomProbs = (rows: number, classes: number, seed: number) =>
    tf.tidy(() => tf.softmax(tf.randomNormal([rows, classes], 0, 2, 'float32', seed)).arraySync() as number[][]);
  for (const [t, alpha, seed] of [
    [1, 0, 1],
    [2, 0.5, 2],
    [4, 0.1, 3],
    [8, 1, 4],
  ] as const)
    it(`T=${t}, alpha=${alpha}`, () => {
      const s = randomProbs(9, 5, seed);
      const te = randomProbs(9, 5, seed + 100);
      const labels = Array.from({ length: 9 }, (_, i) => (i * 7 + seed) % 5);
      const got = tf.tidy(
        () => distillationLoss(tf.tensor2d(s), tf.tensor2d(te), tf.tensor1d(labels, 'int32'), t, alpha).dataSync()[0]!,
      );
      const want = reference(s, te, labels, t, alpha);
      assert.ok(Math.abs(got - want) < 1e-4 * Math.max(1, want), `${got} vs ${want}`);
    });
  it('alpha 1 is the plain cross-entropy; a student equal to its teacher has no soft loss', () => {
    const s = tf.tensor2d(randomProbs(6, 3, 9));
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const ce = sparseCategoricalCrossentropy(s, y).dataSync()[0]!;
    assert.ok(Math.abs(distillationLoss(s, s, y, 3, 1).dataSync()[0]! - ce) < 1e-6);
    assert.ok(Math.abs(distillationLoss(s, s, y, 3, 0).dataSync()[0]!) < 1e-6);
    tf.dispose([s, y]);
  });
});

describe('regression distillation loss (property: matches the loss written out)', () => {
  before(() => initBackend());
  for (const [alpha, seed] of [
    [0, 1],
    [0.3, 2],
    [1, 3],
  ] as const)
    it(`alpha=${alpha}`, () => {
      const rand = (n: number, s: number) =>
        tf.tidy(() => tf.randomNormal([n], 0, 2, 'float32', s).arraySync() as number[]);
      const [s, te, y] = [rand(11, seed), rand(11, seed + 10), rand(11, seed + 20)];
      const mse = (a: number[], b: number[]) => a.reduce((acc, v, i) => acc + (v - b[i]!) ** 2, 0) / a.length;
      const want = alpha * mse(s, y) + (1 - alpha) * mse(s, te);
      // The student's and teacher's outputs are [rows, 1]; the targets [rows].
      const got = tf.tidy(
        () =>
          regressionDistillationLoss(
            tf.tensor2d(s, [11, 1]),
            tf.tensor2d(te, [11, 1]),
            tf.tensor1d(y),
            alpha,
          ).dataSync()[0]!,
      );
      assert.ok(Math.abs(got - want) < 1e-4 * Math.max(1, want), `${got} vs ${want}`);
    });
});
