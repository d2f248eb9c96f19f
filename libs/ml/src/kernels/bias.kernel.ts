import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { allocF32 } from './backend-memory';
import { simdKernels } from './wasm/module';

/**
 * The bias path of dense and conv layers on wasm: Add of a [C] vector to a [..., C] tensor (the bias
 * add) and Sum over every axis but the last (its gradient). Both run wasm/elementwise.wat.ts; any
 * other Add or Sum goes to the stock kernel. Measured on [128,26,26,16] (the bench CNN's first conv):
 * stock Add 1.8 ms (its broadcasting path indexes one element at a time), stock Sum 2.5 ms (it
 * transposes the reduced axes to the end first).
 */

const float = (...ts: TensorInfo[]) => ts.every((t) => t.dtype === 'float32');

export function addConfig(original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const simd = simdKernels(args.backend);
    // x [..., C] + bias [C], either order.
    const [x, bias] =
      b.shape.length === 1 && a.shape.length > 1 ? [a, b] : a.shape.length === 1 && b.shape.length > 1 ? [b, a] : [];
    if (!simd || !x || !bias || !float(a, b) || x.shape[x.shape.length - 1] !== bias.shape[0])
      return original.kernelFunc(args);
    const c = bias.shape[0]!;
    const out = allocF32(args.backend, x.shape);
    simd.rowAdd(simd.ptr(x), simd.ptr(bias), simd.ptr(out), c === 0 ? 0 : tf.util.sizeFromShape(x.shape) / c, c);
    return out;
  };
  return { ...original, kernelFunc };
}

export function sumConfig(original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const simd = simdKernels(args.backend);
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const leading = rank >= 2 && axes.length === rank - 1 && axes.every((ax, i) => ax === i);
    if (!simd || !leading || !float(x)) return original.kernelFunc(args);
    const c = x.shape[rank - 1]!;
    const out = allocF32(args.backend, keepDims ? [...Array<number>(rank - 1).fill(1), c] : [c]);
    simd.colSum(simd.ptr(x), simd.ptr(out), c === 0 ? 0 : tf.util.sizeFromShape(x.shape) / c, c);
    return out;
  };
  return { ...original, kernelFunc };
}

/**
 * wasm's Identity copies the tensor (1 ms per step in the bench CNN, where tfjs' gradients pass
 * activations through Identity); the cpu and webgl backends share the data and count a reference,
 * as wasm's own Reshape does. Same here.
 */
export function identityConfig(original: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype === 'string') return original.kernelFunc(args);
    (args.backend as tf.KernelBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
  return { ...original, kernelFunc };
}
