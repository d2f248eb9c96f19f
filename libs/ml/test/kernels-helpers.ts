import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { mulberry32 } from '../src/data/prng';
import { installFastKernels, uninstallFastKernels } from '../src/kernels';

/**
 * Shared by the kernels*.test.ts property tests: a seeded generator of shapes and data, running the
 * same computation on two backend setups, and a stated tolerance.
 */

export type Setup = 'wasm-fast' | 'cpu-fast' | 'cpu-stock' | 'wasm-stock';

/** Switches backend and kernel set; everything the callback returns must be plain data. */
export async function on<T>(setup: Setup, fn: () => T): Promise<T> {
  const [backend, kind] = setup.split('-') as ['wasm' | 'cpu', 'fast' | 'stock'];
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} failed to initialise`);
  await tf.ready();
  if (kind === 'fast') installFastKernels(backend);
  else uninstallFastKernels(backend);
  return fn();
}

export interface Rng {
  int(lo: number, hi: number): number; // inclusive
  pick<T>(xs: readonly T[]): T;
  bool(): boolean;
  data(size: number): Float32Array; // standard normal
}

export function rng(seed: number): Rng {
  const u = mulberry32(seed);
  return {
    int: (lo, hi) => lo + Math.floor(u() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(u() * xs.length)]!,
    bool: () => u() < 0.5,
    data: (size) => {
      const out = new Float32Array(size);
      for (let i = 0; i < size; i++) out[i] = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
      return out;
    },
  };
}

/** Runs fn on fresh tensors built from `inputs` and returns the outputs' data, disposing everything. */
export function compute(
  inputs: Record<string, { data: Float32Array; shape: number[] }>,
  fn: (t: Record<string, tf.Tensor>) => tf.Tensor | tf.Tensor[],
): Float32Array[] {
  return tf.tidy(() => {
    const ts: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.data, v.shape, 'float32');
    const out = fn(ts);
    return (Array.isArray(out) ? out : [out]).map((t) => t.dataSync() as Float32Array);
  });
}

/**
 * Tolerance used by every kernel test: |got − want| ≤ tol·(1 + max|want|) elementwise, i.e. relative to
 * the output's scale (float32 sums of up to a few hundred terms reorder differently per kernel).
 */
export function assertClose(got: Float32Array, want: Float32Array, tol: number, label: string): void {
  assert.equal(got.length, want.length, `${label}: length ${got.length} vs ${want.length}`);
  let scale = 0;
  for (const w of want) scale = Math.max(scale, Math.abs(w));
  const bound = tol * (1 + scale);
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= bound))
      assert.fail(`${label}: element ${i} is ${got[i]}, reference ${want[i]} (|diff| ${d} > ${bound})`);
  }
}
