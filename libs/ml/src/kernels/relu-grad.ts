import * as tf from '@tensorflow/tfjs';
import type { GradConfig, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs';
import { allocF32, f32 } from './backend-memory';
import { simdKernels } from './wasm/module';

/**
 * Relu's gradient as one kernel, dx = x > 0 ? dy : 0, instead of tfjs' dy·step(cast(x)) (three
 * full-size passes and temporaries: 1.5 ms per step on the bench CNN's first conv output).
 * Gradients are registered per kernel name, not per backend, so the replacement gradient checks that
 * the current backend has TQReluGrad and otherwise runs the stock one. TQReluGrad has a gradient
 * itself (linear in dy), so higher-order gradients still work. Differs from stock only where x is NaN
 * or dy is ±Infinity at x ≤ 0 (stock: NaN; here: 0).
 */
export const RELU_GRAD = 'TQReluGrad';

export function reluGradConfig(backendName: string): KernelConfig {
  const kernelFunc: KernelFunc = ({ inputs, backend }) => {
    const { dy, x } = inputs as { dy: TensorInfo; x: TensorInfo };
    if (dy.dtype !== 'float32' || x.dtype !== 'float32')
      throw new Error(`${RELU_GRAD}: float32 only (got ${dy.dtype}/${x.dtype})`);
    const n = tf.util.sizeFromShape(x.shape);
    const out = allocF32(backend, x.shape);
    const simd = simdKernels(backend);
    if (simd) {
      simd.reluGrad(simd.ptr(dy), simd.ptr(x), simd.ptr(out), n);
      return out;
    }
    const o = f32(backend, out),
      g = f32(backend, dy),
      xs = f32(backend, x);
    // dy is the gradient of relu(x): x's shape, so both hold n elements.
    for (let i = 0; i < n; i++) o[i] = xs[i]! > 0 ? g[i]! : 0;
    return out;
  };
  return { kernelName: RELU_GRAD, backendName, kernelFunc };
}

const reluGradGradient: GradConfig = {
  kernelName: RELU_GRAD,
  inputsToSave: ['x'],
  gradFunc: (ddx, saved) => {
    const [x] = saved as [tf.Tensor];
    return {
      dy: () => tf.engine().runKernel<tf.Tensor>(RELU_GRAD, { dy: ddx as tf.Tensor, x }),
      x: () => tf.zerosLike(x),
    };
  },
};

let stockRelu: GradConfig | undefined;

export function patchReluGradient(): void {
  if (stockRelu) return;
  const stock = tf.getGradient('Relu');
  if (!stock) return;
  stockRelu = stock;
  tf.registerGradient(reluGradGradient);
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      if (!tf.getKernel(RELU_GRAD, tf.getBackend()) || (dy as tf.Tensor).dtype !== 'float32')
        return stock.gradFunc(dy, saved, attrs);
      const [x] = saved as [tf.Tensor];
      return {
        x: () =>
          tf.engine().runKernel<tf.Tensor>(RELU_GRAD, {
            dy: dy as tf.Tensor,
            x: x.dtype === 'float32' ? x : tf.cast(x, 'float32'),
          }),
      };
    },
  });
}

export function unpatchReluGradient(): void {
  if (stockRelu) tf.registerGradient(stockRelu);
  stockRelu = undefined;
}
