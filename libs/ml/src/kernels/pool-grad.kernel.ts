import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { allocF32, f32 } from './backend-memory';
import { infoMatchingDy } from './conv-info';
import { simdKernels } from './wasm/module';

/**
 * MaxPoolGrad and AvgPoolGrad (NHWC, float32): on wasm wasm/pool.wat.ts (SIMD over channels), on cpu
 * single JS passes over the windows with channels innermost.
 *
 * Why: measured on wasm for the bench CNN's first pool ([128,26,26,16], 2x2 stride 2) stock
 * MaxPoolGrad took 29.5 ms and AvgPoolGrad 10.9 ms, 20-50x the forward pool (0.6 ms). The JS passes
 * take 9 and 4.3 ms there, the SIMD ones ~1 and ~0.7 ms.
 * MaxPoolGrad follows tfjs' cpu reference: the gradient goes to the first strictly-largest element of
 * each window in row-major order (none if the window holds only -Infinity/NaN).
 * AvgPoolGrad divides by the number of in-bounds elements of each window, which is what tfjs'
 * forward avgPool divides by. (tfjs' cpu and wasm AvgPoolGrad divide by the full filter size, which is
 * not the gradient of their forward on windows that overlap 'same' padding; on 'valid' ones all agree.)
 */

interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface Window {
  r0: number;
  r1: number;
  c0: number;
  c1: number;
}

function poolInfo(kernel: string, x: TensorInfo, dy: TensorInfo, attrs: PoolAttrs): tf.backend_util.Conv2DInfo {
  if (x.dtype !== 'float32' || dy.dtype !== 'float32')
    throw new Error(`${kernel}: only float32 is supported (got ${x.dtype}/${dy.dtype})`);
  return infoMatchingDy(kernel, dy.shape, attrs.dimRoundingMode, (rounding) =>
    tf.backend_util.computePool2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      rounding,
    ),
  );
}

/** In-bounds input rows [r0, r1) and columns [c0, c1) of output pixel (oh, ow). */
function windowOf(info: tf.backend_util.Conv2DInfo, oh: number, ow: number): Window {
  const r = oh * info.strideHeight - info.padInfo.top,
    c = ow * info.strideWidth - info.padInfo.left;
  return {
    r0: Math.max(0, r),
    r1: Math.min(info.inHeight, r + info.filterHeight),
    c0: Math.max(0, c),
    c1: Math.min(info.inWidth, c + info.filterWidth),
  };
}

/** The geometry arguments of the SIMD pool gradients, after the three pointers. */
function simdGeometry(info: tf.backend_util.Conv2DInfo): number[] {
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  ];
}

/** Calls fn(dyOffset, window, xBatchOffset) for every output pixel. */
function forEachWindow(info: tf.backend_util.Conv2DInfo, fn: (dyOff: number, w: Window, xOff: number) => void): void {
  const C = info.inChannels;
  let dyOff = 0;
  for (let b = 0; b < info.batchSize; b++) {
    const xOff = b * info.inHeight * info.inWidth * C;
    for (let oh = 0; oh < info.outHeight; oh++) {
      for (let ow = 0; ow < info.outWidth; ow++, dyOff += C) fn(dyOff, windowOf(info, oh, ow), xOff);
    }
  }
}

export function maxPoolGradConfig(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const info = poolInfo('MaxPoolGrad', input, dy, attrs as unknown as PoolAttrs);
    const C = info.inChannels,
      W = info.inWidth;
    const out = allocF32(backend, input.shape);
    const dx = f32(backend, out).fill(0);
    const simd = simdKernels(backend);
    if (simd) {
      simd.maxPoolGrad(simd.ptr(input), simd.ptr(dy), simd.ptr(out), ...simdGeometry(info));
      return out;
    }
    const x = f32(backend, input),
      g = f32(backend, dy);
    const best = new Float32Array(C),
      at = new Int32Array(C);
    // Windows are clipped to the input and ch < C = the length of best/at: every index is in range.
    forEachWindow(info, (dyOff, w, xOff) => {
      best.fill(-Infinity);
      at.fill(-1);
      for (let r = w.r0; r < w.r1; r++) {
        for (let c = w.c0; c < w.c1; c++) {
          const base = xOff + (r * W + c) * C;
          for (let ch = 0; ch < C; ch++) {
            const v = x[base + ch]!;
            if (v > best[ch]!) {
              best[ch] = v;
              at[ch] = base + ch;
            }
          }
        }
      }
      for (let ch = 0; ch < C; ch++) {
        const i = at[ch]!;
        if (i >= 0) dx[i]! += g[dyOff + ch]!;
      }
    });
    return out;
  };
  return { kernelName: 'MaxPoolGrad', backendName, kernelFunc };
}

export function avgPoolGradConfig(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend, attrs }) => {
    const { dy, input } = inputs as { dy: TensorInfo; input: TensorInfo };
    const info = poolInfo('AvgPoolGrad', input, dy, attrs as unknown as PoolAttrs);
    const C = info.inChannels,
      W = info.inWidth;
    const out = allocF32(backend, input.shape);
    const dx = f32(backend, out).fill(0);
    const simd = simdKernels(backend);
    if (simd) {
      simd.avgPoolGrad(0, simd.ptr(dy), simd.ptr(out), ...simdGeometry(info));
      return out;
    }
    const g = f32(backend, dy);
    forEachWindow(info, (dyOff, w, xOff) => {
      const count = (w.r1 - w.r0) * (w.c1 - w.c0);
      if (count <= 0) return;
      const scale = 1 / count;
      for (let r = w.r0; r < w.r1; r++) {
        for (let c = w.c0; c < w.c1; c++) {
          const base = xOff + (r * W + c) * C;
          // The window is clipped to the input, so base + ch is in dx.
          for (let ch = 0; ch < C; ch++) dx[base + ch]! += g[dyOff + ch]! * scale;
        }
      }
    });
    return out;
  };
  return { kernelName: 'AvgPoolGrad', backendName, kernelFunc };
}
