import * as tf from '@tensorflow/tfjs';
import type { KernelConfig } from '@tensorflow/tfjs';
import { fusedAdamConfig } from './adam.kernel';
import { conv2dBackpropFilterConfig, conv2dBackpropInputConfig } from './conv2d-backprop.kernel';
import { patchAdam, unpatchAdam } from './fused-adam';
import { batchMatMulConfig, fusedMatMulConfig } from './matmul.kernel';
import { avgPoolGradConfig, maxPoolGradConfig } from './pool-grad.kernel';
import { addConfig, identityConfig, sumConfig } from './bias.kernel';
import { patchReluGradient, reluGradConfig, unpatchReluGradient } from './relu-grad';

export { FUSED_ADAM } from './adam.kernel';
export { RELU_GRAD } from './relu-grad';

/**
 * Faster (or missing) training kernels for tfjs' wasm and cpu backends; see each *.kernel.ts for
 * what it fixes and what it measured. Native backends (tfjs-node) get nothing: theirs are fast.
 */
type Factory = (backendName: string, original?: KernelConfig) => KernelConfig;
const FACTORIES: Record<string, { kernel: string; make: Factory }[]> = {
  wasm: [
    { kernel: 'BatchMatMul', make: (b, o) => batchMatMulConfig(b, need(o)) },
    { kernel: '_FusedMatMul', make: (b, o) => fusedMatMulConfig(b, need(o)) },
    { kernel: 'Add', make: (_, o) => addConfig(need(o)) },
    { kernel: 'Sum', make: (_, o) => sumConfig(need(o)) },
    { kernel: 'Identity', make: (_, o) => identityConfig(need(o)) },
    ...shared(),
  ],
  // cpu's own matmul handles transposes at full speed, so only the slow loops are replaced.
  cpu: shared(),
};

function shared(): { kernel: string; make: Factory }[] {
  return [
    { kernel: 'Conv2DBackpropFilter', make: conv2dBackpropFilterConfig },
    { kernel: 'Conv2DBackpropInput', make: conv2dBackpropInputConfig },
    { kernel: 'MaxPoolGrad', make: maxPoolGradConfig },
    { kernel: 'AvgPoolGrad', make: avgPoolGradConfig },
    { kernel: 'TQFusedAdam', make: fusedAdamConfig },
    { kernel: 'TQReluGrad', make: reluGradConfig },
  ];
}

function need(original: KernelConfig | undefined): KernelConfig {
  if (!original) throw new Error('fast kernels: the stock kernel they wrap is not registered');
  return original;
}

/** Stock configs displaced per backend (undefined where the backend had none), to restore them. */
const displaced = new Map<string, Map<string, KernelConfig | undefined>>();

/**
 * Registers the fast kernels for `backendName` ('wasm' or 'cpu'; others are left alone) and routes
 * tf.AdamOptimizer through the fused update. Idempotent. Returns the kernel names now installed.
 */
export function installFastKernels(backendName: string): string[] {
  const list = FACTORIES[backendName];
  if (!list) return [];
  if (!displaced.has(backendName)) {
    const stock = new Map<string, KernelConfig | undefined>();
    for (const { kernel, make } of list) {
      const original = tf.getKernel(kernel, backendName);
      const config = make(backendName, original);
      if (original) tf.unregisterKernel(kernel, backendName);
      tf.registerKernel(config);
      stock.set(kernel, original);
    }
    displaced.set(backendName, stock);
  }
  patchAdam();
  patchReluGradient();
  return [...displaced.get(backendName)!.keys()];
}

/** Restores the stock kernels of `backendName` (used by the bench and tests to measure both). */
export function uninstallFastKernels(backendName: string): void {
  const stock = displaced.get(backendName);
  if (!stock) return;
  for (const [kernel, original] of stock) {
    tf.unregisterKernel(kernel, backendName);
    if (original) tf.registerKernel(original);
  }
  displaced.delete(backendName);
  if (displaced.size === 0) {
    unpatchAdam();
    unpatchReluGradient();
  }
}

export function fastKernelsInstalled(backendName: string): string[] {
  return [...(displaced.get(backendName)?.keys() ?? [])];
}
