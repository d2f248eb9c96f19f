import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { release, transposeLast2, type AnyBackend } from './backend-memory';

/**
 * BatchMatMul and _FusedMatMul with transposed operands, for the wasm backend.
 *
 * Why: wasm sends any transposed operand to a naive loop. Measured here (2 vCPU Zen 3, batch 128):
 * [128,784]·[784,256] runs at ~27-31 GFLOP/s plain but ~2 GFLOP/s with transposeA or transposeB
 * (1024³: 30 GFLOP/s plain, 0.4 with transposeA) — and every dense-layer gradient is a transposed
 * matmul (dW = xᵀ·dy, dx = dy·Wᵀ). Transposing explicitly with the wasm Transpose kernel costs
 * ~2 ns/element (0.2 ms for 128×784), so "transpose, then the plain path" is ~10× faster.
 *
 * Which tensor to transpose: C = op(A)·op(B) either directly (transpose the flagged operands) or as
 * Cᵀ = op(B)ᵀ·op(A)ᵀ (transpose the unflagged operands and the result). We pick the plan that moves
 * fewer elements; e.g. Aᵀ·Bᵀ becomes one transpose of the output, (B·A)ᵀ.
 */

interface MatMulAttrs { transposeA: boolean; transposeB: boolean }

function size(t: TensorInfo): number {
  return tf.util.sizeFromShape(t.shape);
}

/** Runs `plain` (a kernel that receives untransposed operands) on op(a)·op(b). */
function withoutTransposes(
  backend: AnyBackend, backendName: string, a: TensorInfo, b: TensorInfo, attrs: MatMulAttrs, canSwap: boolean,
  plain: (a: TensorInfo, b: TensorInfo) => TensorInfo,
): TensorInfo {
  const { transposeA: tA, transposeB: tB } = attrs;
  const direct = (tA ? size(a) : 0) + (tB ? size(b) : 0);
  const outSize = direct === 0 ? 0 : estimateOutSize(a, b, attrs);
  const swapped = (tA ? 0 : size(a)) + (tB ? 0 : size(b)) + outSize;
  const temps: TensorInfo[] = [];
  const t = (x: TensorInfo): TensorInfo => {
    const y = transposeLast2(backend, backendName, x);
    temps.push(y);
    return y;
  };
  try {
    if (!canSwap || direct <= swapped) return plain(tA ? t(a) : a, tB ? t(b) : b);
    const outT = plain(tB ? b : t(b), tA ? a : t(a));
    temps.push(outT);
    return transposeLast2(backend, backendName, outT);
  } finally {
    release(backend, ...temps);
  }
}

/** Elements of op(a)·op(b), batch dims broadcast. */
function estimateOutSize(a: TensorInfo, b: TensorInfo, { transposeA, transposeB }: MatMulAttrs): number {
  const ra = a.shape.length, rb = b.shape.length;
  const m = a.shape[transposeA ? ra - 1 : ra - 2] ?? 1;
  const n = b.shape[transposeB ? rb - 2 : rb - 1] ?? 1;
  const batch = Math.max(tf.util.sizeFromShape(a.shape.slice(0, -2)), tf.util.sizeFromShape(b.shape.slice(0, -2)));
  return batch * m * n;
}

function isFloat(...ts: (TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t === undefined || t.dtype === 'float32');
}

export function batchMatMulConfig(backendName: string, original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as unknown as MatMulAttrs;
    if ((!attrs.transposeA && !attrs.transposeB) || !isFloat(a, b)) return original.kernelFunc(args);
    const plainAttrs: NamedAttrMap = { ...args.attrs, transposeA: false, transposeB: false };
    return withoutTransposes(args.backend, backendName, a, b, attrs, true, (a2, b2) =>
      original.kernelFunc({ inputs: { a: a2, b: b2 }, backend: args.backend, attrs: plainAttrs }) as TensorInfo);
  };
  return { ...original, kernelFunc };
}

/** Dense layers with an activation run _FusedMatMul; bias and activation apply to C, so never swap. */
export function fusedMatMulConfig(backendName: string, original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const inputs = args.inputs as { a: TensorInfo; b: TensorInfo; bias?: TensorInfo; preluActivationWeights?: TensorInfo };
    const attrs = args.attrs as unknown as MatMulAttrs;
    if ((!attrs.transposeA && !attrs.transposeB) || !isFloat(inputs.a, inputs.b)) return original.kernelFunc(args);
    const plainAttrs: NamedAttrMap = { ...args.attrs, transposeA: false, transposeB: false };
    return withoutTransposes(args.backend, backendName, inputs.a, inputs.b, attrs, false, (a2, b2) =>
      original.kernelFunc({ inputs: { ...inputs, a: a2, b: b2 }, backend: args.backend, attrs: plainAttrs }) as TensorInfo);
  };
  return { ...original, kernelFunc };
}
