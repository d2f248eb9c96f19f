import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { allocF32, f32, release, runKernel, view } from './backend-memory';
import { infoMatchingDy } from './conv-info';
import { col2im, convGeometry, im2colT, type ConvGeometry } from './im2col';
import { simdKernels } from './wasm/module';

/**
 * Conv2D gradients as im2col + one matmul.
 *
 * Why: wasm has no Conv2DBackpropFilter at all (a conv2d layer cannot train there), and its
 * Conv2DBackpropInput ran at 1.5-2.3 GFLOP/s (61 ms for [128,13,13,16]→3x3x32); the cpu backend's
 * filter gradient is a 6-deep JS loop (~2 s and ~13 s for the two layers of the bench CNN).
 * Here: dW = im2col(x)ᵀ · dy and dx = col2im(dy · Wᵀ). On wasm im2col/col2im and the products run
 * in the SIMD module (wasm/conv.wat.ts, wasm/gemm.wat.ts; im2col(x)ᵀ is read through strides); on
 * cpu in JS (../im2col.ts) with the backend's BatchMatMul. Bench CNN, second conv (143 MFLOP per
 * product): filter gradient ~5 ms, input gradient ~5 ms on wasm.
 *
 * Supported: NHWC float32, any stride, 'same' / 'valid' / numeric / explicit padding, any rounding
 * mode. tfjs itself rejects dilations > 1 in conv gradients before these kernels run (its message
 * names the dilation), and the kernels' attrs carry no dilation. NCHW is delegated to the backend's
 * own kernel where one exists, else it fails naming the data format.
 */

type Shape4 = [number, number, number, number];
interface BackpropAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function geometry(
  kernel: string,
  xShape: Shape4,
  filterShape: Shape4,
  attrs: BackpropAttrs,
  dy: TensorInfo,
): ConvGeometry {
  return convGeometry(
    infoMatchingDy(kernel, dy.shape, attrs.dimRoundingMode, (rounding) =>
      tf.backend_util.computeConv2DInfo(xShape, filterShape, attrs.strides, 1, attrs.pad, rounding),
    ),
  );
}

/** The geometry arguments of the SIMD im2col / col2im, after the two pointers. */
function geometryArgs(g: ConvGeometry): number[] {
  return [
    g.batch,
    g.inH,
    g.inW,
    g.inC,
    g.outH,
    g.outW,
    g.kH,
    g.kW,
    g.strideH,
    g.strideW,
    g.dilH,
    g.dilW,
    g.padTop,
    g.padLeft,
  ];
}

/** NCHW or non-float input: hand over to the stock kernel if the backend has one, else say what is missing. */
function unsupported(
  kernel: string,
  backendName: string,
  attrs: BackpropAttrs,
  dtypes: string[],
  original?: KernelConfig,
): KernelFunc {
  if (original) return original.kernelFunc;
  throw new Error(
    `${kernel} on ${backendName}: only NHWC float32 is supported (got dataFormat ${attrs.dataFormat}, dtypes ${dtypes.join('/')})`,
  );
}

export function conv2dBackpropFilterConfig(backendName: string, original?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as BackpropAttrs & { filterShape: Shape4 };
    if (attrs.dataFormat === 'NCHW' || x.dtype !== 'float32' || dy.dtype !== 'float32') {
      return unsupported('Conv2DBackpropFilter', backendName, attrs, [x.dtype, dy.dtype], original)(args);
    }
    const { backend } = args;
    const g = geometry('Conv2DBackpropFilter', x.shape as Shape4, attrs.filterShape, attrs, dy);
    const P = g.kH * g.kW * g.inC,
      N = g.batch * g.outH * g.outW;
    const simd = simdKernels(backend);
    if (simd) {
      const col = allocF32(backend, [N, P]);
      try {
        simd.im2col(simd.ptr(x), simd.ptr(col), ...geometryArgs(g));
        const dw = allocF32(backend, [P, g.outC]);
        simd.gemm(simd.ptr(col), simd.ptr(dy), simd.ptr(dw), P, N, g.outC, 1, P);
        return view(dw, attrs.filterShape);
      } finally {
        release(backend, col);
      }
    }
    const colT = allocF32(backend, [P, N]);
    try {
      im2colT(f32(backend, x), g, f32(backend, colT));
      const dw = runKernel(
        tf.getKernel('BatchMatMul', backendName),
        backend,
        { a: colT, b: view(dy, [N, g.outC]) },
        { transposeA: false, transposeB: false },
      );
      return view(dw, attrs.filterShape);
    } finally {
      release(backend, colT);
    }
  };
  return {
    kernelName: 'Conv2DBackpropFilter',
    backendName,
    kernelFunc,
    ...(original?.setupFunc ? { setupFunc: original.setupFunc } : {}),
  };
}

export function conv2dBackpropInputConfig(backendName: string, original?: KernelConfig): KernelConfig {
  const kernelFunc: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as BackpropAttrs & { inputShape: Shape4 };
    if (attrs.dataFormat === 'NCHW' || dy.dtype !== 'float32' || filter.dtype !== 'float32') {
      return unsupported('Conv2DBackpropInput', backendName, attrs, [dy.dtype, filter.dtype], original)(args);
    }
    const { backend } = args;
    const g = geometry('Conv2DBackpropInput', attrs.inputShape, filter.shape as Shape4, attrs, dy);
    const P = g.kH * g.kW * g.inC,
      N = g.batch * g.outH * g.outW;
    // dcol [N, P] = dy [N, outC] · Wᵀ, W viewed as [P, outC]; the transposed operand is small.
    const dcol = runKernel(
      tf.getKernel('BatchMatMul', backendName),
      backend,
      { a: view(dy, [N, g.outC]), b: view(filter, [P, g.outC]) },
      { transposeA: false, transposeB: true },
    );
    try {
      const dx = allocF32(backend, [...attrs.inputShape]);
      const out = f32(backend, dx);
      out.fill(0);
      const simd = simdKernels(backend);
      if (simd) simd.col2im(simd.ptr(dx), simd.ptr(dcol), ...geometryArgs(g));
      else col2im(f32(backend, dcol), g, out);
      return dx;
    } finally {
      release(backend, dcol);
    }
  };
  return {
    kernelName: 'Conv2DBackpropInput',
    backendName,
    kernelFunc,
    ...(original?.setupFunc ? { setupFunc: original.setupFunc } : {}),
  };
}
