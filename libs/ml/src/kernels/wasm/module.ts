import type { TensorInfo } from '@tensorflow/tfjs';
import { ADAM } from './adam.wat';
import { instantiate, type WasmMemory } from './assembler';
import { COL2IM, IM2COL } from './conv.wat';
import { COL_SUM, RELU_GRAD, ROW_ADD } from './elementwise.wat';
import { GEMM } from './gemm.wat';
import { AVG_POOL_GRAD, MAX_POOL_GRAD } from './pool.wat';

/**
 * The SIMD kernels, instantiated once per tfjs-wasm backend on that backend's own memory, so they
 * take tensors' heap offsets directly. undefined where the backend does not expose its memory
 * (then the callers keep their JS / stock paths).
 */
export interface SimdKernels {
  gemm(a: number, b: number, c: number, m: number, k: number, n: number, sAi: number, sAk: number): void;
  adam(
    x: number,
    m: number,
    v: number,
    g: number,
    x2: number,
    m2: number,
    v2: number,
    n: number,
    beta1: number,
    oneMinusBeta1: number,
    beta2: number,
    oneMinusBeta2: number,
    lr: number,
    c1: number,
    c2: number,
    eps: number,
  ): void;
  /** (x, col, batch, inH, inW, C, outH, outW, kH, kW, sH, sW, dH, dW, padTop, padLeft) */
  im2col(...geometry: number[]): void;
  /** Same parameters as im2col with (dx, dcol). */
  col2im(...geometry: number[]): void;
  /** (x, dy, dx, batch, inH, inW, C, outH, outW, fH, fW, sH, sW, padTop, padLeft) */
  maxPoolGrad(...geometry: number[]): void;
  /** Same parameters as maxPoolGrad (x unused). */
  avgPoolGrad(...geometry: number[]): void;
  colSum(x: number, out: number, rows: number, c: number): void;
  rowAdd(x: number, bias: number, out: number, rows: number, c: number): void;
  reluGrad(dy: number, x: number, out: number, n: number): void;
  /** Byte offset of a tensor in the heap. */
  ptr(t: TensorInfo): number;
}

/** tfjs-backend-wasm 4.22: the emscripten module (its `asm` exports hold the memory) and the tensor table. */
interface WasmBackendInternals {
  wasm?: { asm?: { memory?: WasmMemory }; wasmExports?: { memory?: WasmMemory } };
  dataIdMap?: { get(dataId: object): { memoryOffset: number } | undefined };
}

const cache = new WeakMap<object, SimdKernels | null>();

export function simdKernels(backend: object): SimdKernels | undefined {
  let k = cache.get(backend);
  if (k === undefined) {
    const b = backend as WasmBackendInternals;
    const memory = b.wasm?.asm?.memory ?? b.wasm?.wasmExports?.memory;
    const table = b.dataIdMap;
    k = null;
    if (memory && table) {
      try {
        const fns = instantiate(memory, [
          GEMM,
          ADAM,
          IM2COL,
          COL2IM,
          MAX_POOL_GRAD,
          AVG_POOL_GRAD,
          COL_SUM,
          ROW_ADD,
          RELU_GRAD,
        ]) as unknown as Omit<SimdKernels, 'ptr'>;
        k = {
          ...fns,
          ptr: (t) => {
            const entry = table.get(t.dataId);
            if (!entry) throw new Error('simd kernels: tensor not in the wasm heap');
            return entry.memoryOffset;
          },
        };
      } catch (err) {
        // e.g. the threaded tfjs-wasm build, whose shared memory this module's import does not declare.
        console.warn(`fast kernels: SIMD module unavailable, using the JS / stock paths: ${(err as Error).message}`);
      }
    }
    cache.set(backend, k);
  }
  return k ?? undefined;
}
