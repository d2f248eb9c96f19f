import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { assertClose, compute, on, rng } from './kernels-helpers';

/**
 * Property test: wasm BatchMatMul / _FusedMatMul with the fast kernels installed against the cpu
 * backend's stock kernels, on random shapes, batch dims (incl. broadcast) and transpose flags.
 * Tolerance 1e-5 relative to the output's scale (see assertClose).
 */
const CASES = 60;
const TOL = 1e-5;
const ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu'] as const;

function operandShape(batch: number[], rows: number, cols: number, transposed: boolean): number[] {
  return [...batch, ...(transposed ? [cols, rows] : [rows, cols])];
}

describe('fast matmul kernels (wasm) match the cpu reference', () => {
  it(`tf.matMul, ${CASES} random shapes and transposes`, async () => {
    const r = rng(101);
    for (let c = 0; c < CASES; c++) {
      const m = r.int(1, 70),
        k = r.int(1, 70),
        n = r.int(1, 70);
      const tA = r.bool(),
        tB = r.bool();
      const rank = r.pick([2, 3, 4]);
      const batch = rank === 2 ? [] : rank === 3 ? [r.int(1, 3)] : [r.int(1, 2), r.int(1, 3)];
      // Broadcast: one operand may have batch 1 throughout (tfjs kernels index flattened batches modulo
      // each operand's count, which is numpy broadcasting only in that case and for equal batches).
      const batchB = r.bool() ? batch : batch.map(() => 1);
      const [batchOfA, batchOfB] = r.bool() ? [batch, batchB] : [batchB, batch];
      const aShape = operandShape(batchOfA, m, k, tA),
        bShape = operandShape(batchOfB, k, n, tB);
      const inputs = {
        a: { data: r.data(tf.util.sizeFromShape(aShape)), shape: aShape },
        b: { data: r.data(tf.util.sizeFromShape(bShape)), shape: bShape },
      };
      const run = (t: Record<string, tf.Tensor>) => tf.matMul(t.a!, t.b!, tA, tB);
      const [want] = await on('cpu-stock', () => compute(inputs, run));
      const [got] = await on('wasm-fast', () => compute(inputs, run));
      assertClose(got!, want!, TOL, `matMul a[${aShape}] b[${bShape}] tA=${tA} tB=${tB}`);
    }
  });

  it("tf.matMul on shapes past the SIMD gemm's cache blocks (K > 256, M > 64, N mod 8 ≠ 0)", async () => {
    const r = rng(102);
    for (const [m, k, n] of [
      [130, 600, 37],
      [67, 257, 8],
      [5, 1030, 19],
      [200, 300, 41],
    ] as const) {
      const tA = r.bool(),
        tB = r.bool();
      const aShape = operandShape([], m, k, tA),
        bShape = operandShape([], k, n, tB);
      const inputs = { a: { data: r.data(m * k), shape: aShape }, b: { data: r.data(k * n), shape: bShape } };
      const run = (t: Record<string, tf.Tensor>) => tf.matMul(t.a!, t.b!, tA, tB);
      const [want] = await on('cpu-stock', () => compute(inputs, run));
      const [got] = await on('wasm-fast', () => compute(inputs, run));
      assertClose(got!, want!, TOL, `matMul [${aShape}]x[${bShape}] tA=${tA} tB=${tB}`);
    }
  });

  it(`tf.fused.matMul with bias and activation, ${CASES} random cases`, async () => {
    const r = rng(202);
    for (let c = 0; c < CASES; c++) {
      const m = r.int(1, 50),
        k = r.int(1, 50),
        n = r.int(1, 50);
      const tA = r.bool(),
        tB = r.bool(),
        activation = r.pick(ACTIVATIONS),
        withBias = r.bool();
      const aShape = operandShape([], m, k, tA),
        bShape = operandShape([], k, n, tB);
      const inputs = {
        a: { data: r.data(m * k), shape: aShape },
        b: { data: r.data(k * n), shape: bShape },
        bias: { data: r.data(n), shape: [n] },
      };
      const run = (t: Record<string, tf.Tensor>) =>
        tf.fused.matMul({
          a: t.a!,
          b: t.b!,
          transposeA: tA,
          transposeB: tB,
          ...(withBias ? { bias: t.bias! } : {}), // bias is in `inputs` above
          activation,
          leakyreluAlpha: 0.3,
        });
      const [want] = await on('cpu-stock', () => compute(inputs, run));
      const [got] = await on('wasm-fast', () => compute(inputs, run));
      assertClose(
        got!,
        want!,
        TOL,
        `fused.matMul [${aShape}]x[${bShape}] tA=${tA} tB=${tB} ${activation} bias=${withBias}`,
      );
    }
  });

  it('matmul gradients (the transposed products backprop issues) match', async () => {
    const r = rng(303);
    for (let c = 0; c < 20; c++) {
      const m = r.int(1, 40),
        k = r.int(1, 40),
        n = r.int(1, 40);
      const inputs = {
        a: { data: r.data(m * k), shape: [m, k] },
        b: { data: r.data(k * n), shape: [k, n] },
        dy: { data: r.data(m * n), shape: [m, n] },
      };
      const run = (t: Record<string, tf.Tensor>) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b))([t.a!, t.b!], t.dy);
      const want = await on('cpu-stock', () => compute(inputs, run));
      const got = await on('wasm-fast', () => compute(inputs, run));
      assertClose(got[0]!, want[0]!, TOL, `d/da [${m},${k}]x[${k},${n}]`);
      assertClose(got[1]!, want[1]!, TOL, `d/db [${m},${k}]x[${k},${n}]`);
    }
  });
});
