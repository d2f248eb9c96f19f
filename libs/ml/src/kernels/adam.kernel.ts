import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { allocF32, f32 } from './backend-memory';
import { simdKernels } from './wasm/module';

/**
 * One fused Adam step for one variable: the arithmetic of tfjs 4.22 AdamOptimizer.applyGradients
 *   m' = β1·m + (1−β1)·g;  v' = β2·v + (1−β2)·g²
 *   x' = x − lr · (m' / (1−β1ᵗ)) / (sqrt(v' / (1−β2ᵗ)) + ε)
 * in one pass, returning [x', m', v'].
 *
 * Why: stock Adam issues ~15 kernels per variable (each a full-size temporary plus a kernel launch
 * with its JS bookkeeping), ~100 kernels per step for a 3-layer MLP: ~2-3 ms of a step on wasm.
 * On wasm the pass is wasm/adam.wat.ts (SIMD); elsewhere (cpu) a JS loop, which is float64 and does
 * the divisions and square root one element at a time (~1.3 ms for the MLP's 235k parameters).
 * β1ᵗ and β2ᵗ come in as the optimizer's own scalar tensors.
 */
export const FUSED_ADAM = 'TQFusedAdam';

export interface FusedAdamAttrs {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
}

export function fusedAdamConfig(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, m, v, g, accBeta1, accBeta2 } = inputs as Record<
      'x' | 'm' | 'v' | 'g' | 'accBeta1' | 'accBeta2',
      TensorInfo
    >;
    const { beta1, beta2, epsilon, learningRate } = attrs as unknown as FusedAdamAttrs;
    const outX = allocF32(backend, x.shape),
      outM = allocF32(backend, x.shape),
      outV = allocF32(backend, x.shape);
    const size = tf.util.sizeFromShape(x.shape);
    for (const t of [x, m, v, g]) {
      if (t.dtype !== 'float32') throw new Error(`${FUSED_ADAM}: float32 only, got ${t.dtype}`);
      if (tf.util.sizeFromShape(t.shape) !== size)
        throw new Error(`${FUSED_ADAM}: variable [${x.shape}], moments and gradient [${t.shape}] differ in size`);
    }
    // Bias corrections as float32 scalars, as the stock ops compute them; 1−β as tfjs' scalars round it.
    // accBeta1/2 are the optimizer's scalar variables: one element each.
    const c1 = Math.fround(1 - f32(backend, accBeta1)[0]!),
      c2 = Math.fround(1 - f32(backend, accBeta2)[0]!);
    const a1 = Math.fround(1 - beta1),
      a2 = Math.fround(1 - beta2);
    const simd = simdKernels(backend);
    if (simd) {
      const p = (t: TensorInfo) => simd.ptr(t);
      simd.adam(
        p(x),
        p(m),
        p(v),
        p(g),
        p(outX),
        p(outM),
        p(outV),
        size,
        beta1,
        a1,
        beta2,
        a2,
        learningRate,
        c1,
        c2,
        epsilon,
      );
      return [outX, outM, outV];
    }
    const nx = f32(backend, outX),
      nm = f32(backend, outM),
      nv = f32(backend, outV);
    const xs = f32(backend, x),
      ms = f32(backend, m),
      vs = f32(backend, v),
      gs = f32(backend, g);
    // Every buffer holds `size` elements (checked above), so i is in range for all of them.
    for (let i = 0; i < size; i++) {
      const gi = gs[i]!;
      const mi = beta1 * ms[i]! + a1 * gi;
      const vi = beta2 * vs[i]! + a2 * (gi * gi);
      nm[i] = mi;
      nv[i] = vi;
      nx[i] = xs[i]! - (mi / c1 / (Math.sqrt(vi / c2) + epsilon)) * learningRate;
    }
    return [outX, outM, outV];
  };
  return { kernelName: FUSED_ADAM, backendName, kernelFunc };
}
