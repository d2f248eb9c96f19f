import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  buildStudent,
  classifierLogits,
  distillationLoss,
  initBackend,
  regressionDistillationLoss,
  sparseCategoricalCrossentropy,
} from '@tq/ml';

/** The loss written out row by row in plain numbers, on logits: the reference the tensor version must match. */
function reference(student: number[][], teacher: number[][], labels: number[], t: number, alpha: number): number {
  const softmax = (z: number[], temp: number) => {
    const m = Math.max(...z.map((v) => v / temp));
    const e = z.map((v) => Math.exp(v / temp - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  let kl = 0;
  let ce = 0;
  student.forEach((s, r) => {
    const [ps, pt] = [softmax(s, t), softmax(teacher[r]!, t)];
    kl += pt.reduce((acc, v, k) => acc + v * (Math.log(v) - Math.log(ps[k]!)), 0);
    ce -= Math.log(softmax(s, 1)[labels[r]!]!);
  });
  const n = student.length;
  return (alpha * ce) / n + ((1 - alpha) * t * t * kl) / n;
}

describe('distillation loss (property: matches the loss written out, over random rows)', () => {
  before(() => initBackend());
  // Logits as far apart as a confident model's (a wrong class 30 below the right one).
  const randomLogits = (rows: number, classes: number, seed: number) =>
    tf.tidy(() => tf.randomNormal([rows, classes], 0, 10, 'float32', seed).arraySync() as number[][]);
  for (const [t, alpha, seed] of [
    [1, 0, 1],
    [2, 0.5, 2],
    [4, 0.1, 3],
    [8, 1, 4],
  ] as const)
    it(`T=${t}, alpha=${alpha}`, () => {
      const s = randomLogits(9, 5, seed);
      const te = randomLogits(9, 5, seed + 100);
      const labels = Array.from({ length: 9 }, (_, i) => (i * 7 + seed) % 5);
      const got = tf.tidy(
        () => distillationLoss(tf.tensor2d(s), tf.tensor2d(te), tf.tensor1d(labels, 'int32'), t, alpha).dataSync()[0]!,
      );
      const want = reference(s, te, labels, t, alpha);
      assert.ok(Math.abs(got - want) < 1e-4 * Math.max(1, want), `${got} vs ${want}`);
    });
  it('alpha 1 is the plain cross-entropy; a student equal to its teacher has no soft loss', () => {
    // Logits close enough that no probability is below the clip of the plain cross-entropy.
    const z = tf.tidy(() => tf.div(tf.tensor2d(randomLogits(6, 3, 9)), 10));
    const y = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const ce = tf.tidy(() => sparseCategoricalCrossentropy(tf.softmax(z), y).dataSync()[0]!);
    assert.ok(Math.abs(distillationLoss(z, z, y, 3, 1).dataSync()[0]! - ce) < 1e-5);
    assert.ok(Math.abs(distillationLoss(z, z, y, 3, 0).dataSync()[0]!) < 1e-6);
    tf.dispose([z, y]);
  });
});

describe('classifierLogits', () => {
  before(() => initBackend());
  it('are the logits of the softmax output, also where p underflows the clip of log(p)', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 6, activation: 'relu', inputShape: [4], kernelInitializer: 'ones' }),
        tf.layers.dense({
          units: 3,
          activation: 'softmax',
          kernelInitializer: tf.initializers.randomNormal({ stddev: 5, seed: 1 }),
        }),
      ],
    });
    const x = tf.tensor2d([
      [1, 2, 3, 4],
      [0.5, 0, 1, 2],
    ]);
    tf.tidy(() => {
      const z = classifierLogits(model, x, false);
      const p = model.predict(x) as tf.Tensor;
      assert.ok(tf.max(tf.abs(tf.sub(tf.softmax(z), p))).dataSync()[0]! < 1e-5, 'softmax(z) is the output');
      // Spread wider than log(1e-7) = -16: the information log(p) would have clipped away.
      const spread = tf.sub(tf.max(z, -1), tf.min(z, -1)).dataSync();
      assert.ok(Math.max(...spread) > 20, `spread ${[...spread]}`);
    });
    tf.dispose(x);
    model.dispose();
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

describe('buildStudent: init from the teacher', () => {
  before(() => initBackend());
  it('keeps the teacher’s most important units (same shapes as a fresh student), fresh otherwise', async () => {
    const teacher = tf.sequential({
      layers: [
        tf.layers.dense({ units: 8, activation: 'relu', inputShape: [5], kernelInitializer: 'glorotUniform' }),
        tf.layers.dense({ units: 3, activation: 'softmax' }),
      ],
    });
    const fromTeacher = await buildStudent(teacher, { width: 0.5, init: 'teacher' }, 1, 'student');
    const fresh = await buildStudent(teacher, { width: 0.5, init: 'random' }, 1, 'student');
    try {
      assert.deepEqual(
        fromTeacher.weights.map((w) => w.shape),
        fresh.weights.map((w) => w.shape),
      );
      // Each hidden unit of the teacher-initialized student is one of the teacher's, with its bias.
      const [tk, tb] = teacher.layers[0]!.getWeights().map((w) => w.arraySync() as number[][] | number[]);
      const [sk, sb] = fromTeacher.layers[0]!.getWeights().map((w) => w.arraySync() as number[][] | number[]);
      const column = (k: number[][], j: number) => k.map((row) => row[j]!);
      for (let j = 0; j < 4; j++) {
        const unit = column(sk as number[][], j);
        const match = [...Array(8).keys()].find((t) => column(tk as number[][], t).every((v, r) => v === unit[r]));
        assert.ok(match !== undefined && (tb as number[])[match] === (sb as number[])[j], `unit ${j}`);
      }
      const freshUnit = column(fresh.layers[0]!.getWeights()[0]!.arraySync() as number[][], 0);
      assert.ok(
        [...Array(8).keys()].every((t) => column(tk as number[][], t).some((v, r) => v !== freshUnit[r])),
        'a fresh student shares no unit with the teacher',
      );
    } finally {
      teacher.dispose();
      fromTeacher.dispose();
      fresh.dispose();
    }
  });
});
