import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, compute, on, rng, type Rng, type Setup } from './kernels-helpers';

/**
 * Property test: MaxPoolGrad / AvgPoolGrad (fast JS kernels, on wasm and cpu) against the cpu
 * backend's stock kernels on random shapes, windows, strides and paddings (same, valid, numeric with
 * each rounding mode); ties included for max pooling (the first maximum in row-major order wins,
 * as in tfjs). Tolerance 1e-5 relative to the output's scale.
 * Two places where the stock gradient is not the reference:
 * - avgPool windows overlapping padding: stock divides by the full window, the forward by the
 *   in-bounds count; the fast kernel is checked by the adjoint identity <avgPool(x),dy> = <x,grad(dy)>.
 * - tfjs' pool gradients drop dimRoundingMode; the fast kernels recover it from dy's shape, checked
 *   against the stock kernel called with the right mode.
 */
const CASES = 40;
const TOL = 1e-5;

type PadKind = 'same' | 'valid' | 'number';
interface Case {
  x: number[];
  size: [number, number];
  strides: [number, number];
  pad: 'same' | 'valid' | number;
  rounding?: 'floor' | 'round' | 'ceil';
  dy: number[];
}

function randomCase(r: Rng, pads: readonly PadKind[]): Case {
  for (;;) {
    const x = [r.int(1, 3), r.int(1, 10), r.int(1, 10), r.int(1, 6)] as [number, number, number, number];
    const size: [number, number] = [r.int(1, 3), r.int(1, 3)];
    const strides: [number, number] = [r.int(1, 3), r.int(1, 3)];
    const kind = r.pick(pads);
    const pad = kind === 'number' ? r.int(0, 1) : kind;
    const rounding = kind === 'number' ? r.pick(['floor', 'round', 'ceil'] as const) : undefined;
    if (typeof pad === 'number' && (pad >= size[0] || pad >= size[1])) continue; // windows wholly in padding
    const info = tf.backend_util.computePool2DInfo(x, size, strides, 1, pad, rounding);
    // Every window must hold an input element ('ceil' can add windows wholly in the padding).
    const lastRow = (info.outHeight - 1) * info.strideHeight - info.padInfo.top,
      lastCol = (info.outWidth - 1) * info.strideWidth - info.padInfo.left;
    if (info.outHeight >= 1 && info.outWidth >= 1 && lastRow < x[1] && lastCol < x[2])
      return { x, size, strides, pad, ...(rounding ? { rounding } : {}), dy: info.outShape };
  }
}

function inputs(r: Rng, c: Case, ties: boolean) {
  const x = r.data(tf.util.sizeFromShape(c.x));
  if (ties) for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i]!);
  return { x: { data: x, shape: c.x }, dy: { data: r.data(tf.util.sizeFromShape(c.dy)), shape: c.dy } };
}

const label = (c: Case) => `x[${c.x}] size ${c.size} strides ${c.strides} pad ${c.pad} ${c.rounding ?? ''}`;

/** The kernel itself, attrs complete (output is unused by both implementations). */
const kernel = (name: 'MaxPoolGrad' | 'AvgPoolGrad', c: Case) => (t: Record<string, tf.Tensor>) => {
  const attrs: tf.NamedAttrMap = {
    filterSize: c.size,
    strides: c.strides,
    pad: c.pad,
    ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
  };
  return tf.engine().runKernel<tf.Tensor>(name, { dy: t.dy!, input: t.x!, output: tf.zerosLike(t.dy!) }, attrs);
};
/** The gradient path training takes (tfjs' MaxPool/AvgPool gradient functions). */
const viaGrad = (kind: 'max' | 'avg', c: Case) => (t: Record<string, tf.Tensor>) =>
  tf.grad((x: tf.Tensor) =>
    (kind === 'max' ? tf.maxPool : tf.avgPool)(x as tf.Tensor4D, c.size, c.strides, c.pad, c.rounding),
  )(t.x!, t.dy);

async function kernelVsStock(setup: Setup, seed: number, name: 'MaxPoolGrad' | 'AvgPoolGrad'): Promise<void> {
  const r = rng(seed);
  for (let i = 0; i < CASES; i++) {
    const c = randomCase(r, name === 'MaxPoolGrad' ? ['same', 'valid', 'number'] : ['valid']);
    const data = inputs(r, c, name === 'MaxPoolGrad' && i % 2 === 0);
    const [want] = await on('cpu-stock', () => compute(data, kernel(name, c)));
    const [got] = await on(setup, () => compute(data, kernel(name, c)));
    assertClose(got!, want!, TOL, `${setup} ${name} ${label(c)}`);
  }
}

describe('fast pooling gradients', () => {
  for (const setup of ['wasm-fast', 'cpu-fast'] as const) {
    it(`${setup}: MaxPoolGrad matches cpu stock on ${CASES} random cases (half with ties)`, () =>
      kernelVsStock(setup, 21, 'MaxPoolGrad'));
    it(`${setup}: AvgPoolGrad matches cpu stock on ${CASES} random 'valid' cases`, () =>
      kernelVsStock(setup, 22, 'AvgPoolGrad'));
  }

  it('wasm: tf.grad through maxPool / avgPool (same, valid) matches cpu stock', async () => {
    const r = rng(24);
    for (let i = 0; i < CASES; i++) {
      const kind = i % 2 === 0 ? 'max' : 'avg';
      const c = randomCase(r, kind === 'max' ? ['same', 'valid'] : ['valid']);
      const data = inputs(r, c, false);
      const [want] = await on('cpu-stock', () => compute(data, viaGrad(kind, c)));
      const [got] = await on('wasm-fast', () => compute(data, viaGrad(kind, c)));
      assertClose(got!, want!, TOL, `${kind}Pool grad ${label(c)}`);
    }
  });

  // wasm: 'same' only, as tfjs-wasm's own forward pools mishandle numeric pads (outside these kernels).
  for (const [setup, pads] of [
    ['cpu-fast', ['same', 'number']],
    ['wasm-fast', ['same']],
  ] as const) {
    it(`${setup}: AvgPoolGrad is the adjoint of avgPool where windows overlap padding (${pads.join(', ')})`, async () => {
      const r = rng(23);
      for (let i = 0; i < CASES; i++) {
        const c = randomCase(r, pads);
        const data = inputs(r, c, false);
        const [lhs, rhs] = await on(setup, () =>
          compute(data, (t) => [
            tf.sum(tf.mul(tf.avgPool(t.x! as tf.Tensor4D, c.size, c.strides, c.pad, c.rounding), t.dy!)),
            tf.sum(tf.mul(t.x!, viaGrad('avg', c)(t))),
          ]),
        );
        assert.ok(
          Math.abs(lhs![0]! - rhs![0]!) <= 1e-4 * (1 + Math.abs(lhs![0]!)),
          `${label(c)}: <pool(x),dy> ${lhs![0]} vs <x,grad(dy)> ${rhs![0]}`,
        );
      }
    });
  }

  it('cpu: the maxPool gradient recovers the rounding mode tfjs drops (numeric pad)', async () => {
    const r = rng(25);
    for (let i = 0; i < CASES; i++) {
      const c = randomCase(r, ['number']);
      const data = inputs(r, c, false);
      const [want] = await on('cpu-stock', () => compute(data, kernel('MaxPoolGrad', c)));
      const [got] = await on('cpu-fast', () => compute(data, viaGrad('max', c)));
      assertClose(got!, want!, TOL, `maxPool grad ${label(c)}`);
    }
  });
});
