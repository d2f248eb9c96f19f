import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';

/**
 * Raw float32 access to tensor memory for the hand-written kernels, on the two backends they serve.
 * Why hand-written loops at all: the ops they implement (im2col, pooling gradients, the Adam update)
 * are memory-bound and simple, and composing them from tfjs ops costs one kernel launch and one
 * full-size temporary per elementwise step.
 *
 * wasm: tensors live in the module's heap; a view is only valid until the next allocation (the heap
 * may grow and detach the old ArrayBuffer), so allocate every output first, then take views.
 * cpu: tensors are plain typed arrays in the backend's data map.
 */

/** tfjs-backend-wasm 4.22 BackendWasm, the members used here. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}
/** tfjs-backend-cpu 4.22 MathBackendCPU, the members used here. */
interface CpuBackendLike {
  data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: 'float32', values?: Float32Array): TensorInfo;
}

/** KernelFunc hands kernels their backend typed as `{}`; these helpers narrow it. */
export type AnyBackend = object;

function isWasm(backend: AnyBackend): backend is KernelBackend & WasmBackendLike {
  return typeof (backend as Partial<WasmBackendLike>).typedArrayFromHeap === 'function';
}
function isCpu(backend: AnyBackend): backend is KernelBackend & CpuBackendLike {
  return typeof (backend as Partial<CpuBackendLike>).makeTensorInfo === 'function' && 'data' in backend;
}

/** A new float32 tensor of `shape`; its contents are undefined (wasm malloc) — write every element. */
export function allocF32(backend: AnyBackend, shape: number[]): TensorInfo {
  if (isWasm(backend)) return backend.makeOutput(shape, 'float32');
  if (isCpu(backend)) return backend.makeTensorInfo(shape, 'float32', new Float32Array(tf.util.sizeFromShape(shape)));
  throw new Error('fast kernels: unsupported backend (expected tfjs wasm or cpu)');
}

/** A live float32 view of a tensor's memory (see the wasm caveat above). */
export function f32(backend: AnyBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`fast kernels: expected a float32 tensor, got ${t.dtype}`);
  if (isWasm(backend)) return backend.typedArrayFromHeap(t) as Float32Array;
  if (isCpu(backend)) {
    const values = backend.data.get(t.dataId).values;
    if (values instanceof Float32Array) return values;
  }
  throw new Error('fast kernels: cannot read tensor memory on this backend');
}

/** Frees a temporary made inside a kernel (outputs are owned by the engine, temporaries are not). */
export function release(backend: AnyBackend, ...ts: TensorInfo[]): void {
  for (const t of ts) (backend as KernelBackend).disposeData(t.dataId);
}

/** Same memory, another shape (what Reshape does, without a kernel call or refcount change). */
export function view(t: TensorInfo, shape: number[]): TensorInfo {
  return { dataId: t.dataId, dtype: t.dtype, shape };
}

/** Runs a kernel of `backendName` directly on TensorInfos, bypassing the engine (no tape, no tracking). */
export function runKernel(
  config: tf.KernelConfig | undefined,
  backend: AnyBackend,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  if (!config) throw new Error('fast kernels: a kernel they build on is not registered');
  const out = config.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`fast kernels: ${config.kernelName} returned several outputs`);
  return out;
}

/** Swaps the last two axes with the backend's own Transpose kernel. */
export function transposeLast2(backend: AnyBackend, backendName: string, x: TensorInfo): TensorInfo {
  const r = x.shape.length;
  const perm = [...Array(r - 2).keys(), r - 1, r - 2];
  return runKernel(tf.getKernel('Transpose', backendName), backend, { x }, { perm });
}
