import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { allocF32, release, transposeLast2, type AnyBackend } from './backend-memory';
import { simdKernels, type SimdKernels } from './wasm/module';

/**
 * BatchMatMul (all transpose flags) and _FusedMatMul with transposed operands, for the wasm backend.
 *
 * Why: wasm sends any transposed operand to a naive loop — measured here (2 vCPU Zen 3) [128,784]·
 * [784,256] at ~2 GFLOP/s with transposeA or transposeB against ~27-31 plain — and every dense-layer
 * gradient is a transposed product (dW = xᵀ·dy, dx = dy·Wᵀ). Its plain path (xnnpack's
 * fully-connected operator) also repacks B on every call because training changes the weights each
 * step: in an MLP step the [128,256]·[256,128] forward took 0.87 ms against 0.28 ms with B cached.
 *
 * So BatchMatMul runs wasm/gemm.wat.ts (no packing, 36-39 GFLOP/s on the MLP's shapes): Aᵀ is read
 * through strides for free, Bᵀ is transposed once by the wasm Transpose kernel (~2 ns/element; it is
 * the weight matrix, the smaller operand, in dx = dy·Wᵀ). _FusedMatMul keeps xnnpack (inference calls
 * it with unchanged weights, which xnnpack caches) and only has transposed operands transposed first.
 * Without the SIMD module (memory not exposed) BatchMatMul falls back to the same transpose-first plan.
 */

interface MatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

const isFloat = (...ts: (TensorInfo | undefined)[]) => ts.every((t) => t === undefined || t.dtype === 'float32');

function simdMatMul(
  simd: SimdKernels,
  backend: AnyBackend,
  backendName: string,
  a: TensorInfo,
  b: TensorInfo,
  { transposeA: tA, transposeB: tB }: MatMulAttrs,
): TensorInfo {
  const ra = a.shape.length,
    rb = b.shape.length;
  const m = a.shape[tA ? ra - 1 : ra - 2]!,
    k = a.shape[tA ? ra - 2 : ra - 1]!;
  const kb = b.shape[tB ? rb - 1 : rb - 2]!,
    n = b.shape[tB ? rb - 2 : rb - 1]!;
  if (k !== kb)
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${tA} and transposeB=${tB} must match.`,
    );
  const batchA = a.shape.slice(0, -2),
    batchB = b.shape.slice(0, -2);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(batchA, batchB);
  const bRows = tB ? transposeLast2(backend, backendName, b) : b;
  try {
    const out = allocF32(backend, [...outBatch, m, n]);
    const [pa, pb, pc] = [simd.ptr(a), simd.ptr(bRows), simd.ptr(out)];
    // Batch dims as tfjs' own BatchMatMul kernels index them (flattened, modulo each operand's count):
    // numpy broadcasting whenever one operand's batch is 1 or both are equal, which is what layers
    // and gradients produce. (Partial broadcasts such as [2,3]×[2,1] differ from numpy in stock too.)
    const batches = tf.util.sizeFromShape(outBatch),
      na = tf.util.sizeFromShape(batchA),
      nb = tf.util.sizeFromShape(batchB);
    for (let i = 0; i < batches; i++) {
      const ia = i % na,
        ib = i % nb;
      simd.gemm(pa + 4 * ia * m * k, pb + 4 * ib * k * n, pc + 4 * i * m * n, m, k, n, tA ? 1 : k, tA ? m : 1);
    }
    return out;
  } finally {
    if (bRows !== b) release(backend, bRows);
  }
}

/** Fallback: op(a)·op(b) through a kernel that only sees untransposed operands. */
function transposeFirst(
  backend: AnyBackend,
  backendName: string,
  a: TensorInfo,
  b: TensorInfo,
  attrs: MatMulAttrs,
  plain: (a: TensorInfo, b: TensorInfo) => TensorInfo,
): TensorInfo {
  const temps: TensorInfo[] = [];
  const t = (x: TensorInfo) => {
    const y = transposeLast2(backend, backendName, x);
    temps.push(y);
    return y;
  };
  try {
    return plain(attrs.transposeA ? t(a) : a, attrs.transposeB ? t(b) : b);
  } finally {
    release(backend, ...temps);
  }
}

export function batchMatMulConfig(backendName: string, original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const attrs = args.attrs as unknown as MatMulAttrs;
    if (!isFloat(a, b)) return original.kernelFunc(args);
    const simd = simdKernels(args.backend);
    if (simd) return simdMatMul(simd, args.backend, backendName, a, b, attrs);
    if (!attrs.transposeA && !attrs.transposeB) return original.kernelFunc(args);
    const plainAttrs: NamedAttrMap = { ...args.attrs, transposeA: false, transposeB: false };
    return transposeFirst(
      args.backend,
      backendName,
      a,
      b,
      attrs,
      (a2, b2) =>
        original.kernelFunc({ inputs: { a: a2, b: b2 }, backend: args.backend, attrs: plainAttrs }) as TensorInfo,
    );
  };
  return { ...original, kernelFunc };
}

export function fusedMatMulConfig(backendName: string, original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const inputs = args.inputs as {
      a: TensorInfo;
      b: TensorInfo;
      bias?: TensorInfo;
      preluActivationWeights?: TensorInfo;
    };
    const attrs = args.attrs as unknown as MatMulAttrs;
    if ((!attrs.transposeA && !attrs.transposeB) || !isFloat(inputs.a, inputs.b)) return original.kernelFunc(args);
    const plainAttrs: NamedAttrMap = { ...args.attrs, transposeA: false, transposeB: false };
    return transposeFirst(
      args.backend,
      backendName,
      inputs.a,
      inputs.b,
      attrs,
      (a2, b2) =>
        original.kernelFunc({
          inputs: { ...inputs, a: a2, b: b2 },
          backend: args.backend,
          attrs: plainAttrs,
        }) as TensorInfo,
    );
  };
  return { ...original, kernelFunc };
}
