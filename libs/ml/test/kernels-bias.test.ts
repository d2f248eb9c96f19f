import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, compute, on, rng, type Setup } from './kernels-helpers';

/**
 * The bias / activation path: wasm Add (vector bias) and Sum (all axes but the last) fast paths,
 * wasm Identity sharing data, and the fused Relu gradient (wasm and cpu) — each against the cpu
 * backend's stock kernels on random shapes, channel counts not multiples of 4 included.
 * Tolerance 1e-5 relative to scale (sums of up to ~500 terms in another order).
 */
const CASES = 40;
const TOL = 1e-5;

function randomShape(r: ReturnType<typeof rng>): number[] {
  return Array.from({ length: r.int(2, 4) }, () => r.int(1, 9));
}

describe('bias and relu kernels', () => {
  it(`wasm Add of a [C] bias, either order, and other broadcasts (stock), ${CASES} cases`, async () => {
    const r = rng(41);
    for (let i = 0; i < CASES; i++) {
      const shape = randomShape(r);
      const c = shape[shape.length - 1]!;
      // Mostly bias adds; some shapes the fast path must leave to the stock kernel.
      const other = i % 4 === 3 ? [shape[shape.length - 2]!, 1] : [c];
      const inputs = {
        x: { data: r.data(tf.util.sizeFromShape(shape)), shape },
        b: { data: r.data(tf.util.sizeFromShape(other)), shape: other },
      };
      const run = (t: Record<string, tf.Tensor>) => (i % 2 ? tf.add(t.x!, t.b!) : tf.add(t.b!, t.x!));
      const [want] = await on('cpu-stock', () => compute(inputs, run));
      const [got] = await on('wasm-fast', () => compute(inputs, run));
      assertClose(got!, want!, TOL, `add [${shape}] + [${other}]`);
    }
  });

  it(`wasm Sum over leading axes (keepDims or not) and other reductions (stock), ${CASES} cases`, async () => {
    const r = rng(42);
    for (let i = 0; i < CASES; i++) {
      const shape = randomShape(r);
      const rank = shape.length;
      const axes = i % 3 === 2 ? [rank - 1] : Array.from({ length: rank - 1 }, (_, k) => (r.bool() ? k : k - rank));
      const keepDims = r.bool();
      const inputs = { x: { data: r.data(tf.util.sizeFromShape(shape)), shape } };
      const run = (t: Record<string, tf.Tensor>) => {
        const s = tf.sum(t.x!, axes, keepDims);
        return tf.reshape(s, [s.size]).concat(tf.tensor1d(s.shape.length ? s.shape : [0]));
      };
      const [want] = await on('cpu-stock', () => compute(inputs, run));
      const [got] = await on('wasm-fast', () => compute(inputs, run));
      assertClose(got!, want!, TOL, `sum [${shape}] axes ${axes} keepDims ${keepDims} (values, then shape)`);
    }
  });

  it('wasm Identity shares data: a clone outlives its source and matches it', async () => {
    await on('wasm-fast', () => {
      const a = tf.tensor([1, 2, 3, 4.5]);
      const before = tf.engine().backend.numDataIds();
      const b = tf.clone(a);
      assert.equal(tf.engine().backend.numDataIds(), before, 'clone allocated a copy');
      a.dispose();
      assert.deepEqual(Array.from(b.dataSync()), [1, 2, 3, 4.5]);
      b.dispose();
    });
  });

  for (const setup of ['wasm-fast', 'cpu-fast'] as const satisfies Setup[]) {
    it(`${setup}: relu gradients (first and second order) match stock`, async () => {
      const r = rng(43);
      for (let i = 0; i < CASES; i++) {
        const shape = randomShape(r);
        const x = r.data(tf.util.sizeFromShape(shape));
        if (i % 5 === 0) x[0] = 0; // relu'(0) is 0 in tfjs
        const inputs = { x: { data: x, shape }, dy: { data: r.data(x.length), shape } };
        const run = (t: Record<string, tf.Tensor>) => {
          const first = tf.grad((v: tf.Tensor) => tf.relu(v))(t.x!, t.dy);
          // d/dx of sum(relu'(x)·dy·x) exercises the gradient of the gradient kernel.
          const second = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.grad((u: tf.Tensor) => tf.relu(u))(v, t.dy), v)))(
            t.x!,
          );
          return [first, second];
        };
        const want = await on('cpu-stock', () => compute(inputs, run));
        const got = await on(setup, () => compute(inputs, run));
        assertClose(got[0]!, want[0]!, TOL, `relu grad [${shape}]`);
        assertClose(got[1]!, want[1]!, TOL, `relu second-order [${shape}]`);
      }
    });
  }
});
