import * as tf from '@tensorflow/tfjs';

export type BackendKind = 'tensorflow' | 'wasm' | 'cpu';
export interface BackendInfo {
  /** tfjs backend name as tf.getBackend() reports it. */
  name: string;
  /** Which package provided it, e.g. "@tensorflow/tfjs-node-gpu". */
  provider: string;
  gpu: boolean;
}

/** Native bindings first: they cannot install on every machine, so they are optional and probed. */
const NATIVE_PROVIDERS = [
  { pkg: '@tensorflow/tfjs-node-gpu', gpu: true },
  { pkg: '@tensorflow/tfjs-node', gpu: false },
] as const;

let current: Promise<BackendInfo> | undefined;

/**
 * Chooses the compute backend once per process: tfjs-node-gpu, tfjs-node, wasm, cpu (or the one
 * `force` names). Idempotent; every caller awaits the same choice.
 */
export function initBackend(force?: BackendKind): Promise<BackendInfo> {
  current ??= chooseBackend(force);
  return current;
}

async function chooseBackend(force?: BackendKind): Promise<BackendInfo> {
  if (!force || force === 'tensorflow') {
    for (const { pkg, gpu } of NATIVE_PROVIDERS) {
      if (tryRequire(pkg) && (await tf.setBackend('tensorflow'))) return ready({ name: 'tensorflow', provider: pkg, gpu });
    }
    if (force) throw new Error('TQ_BACKEND=tensorflow but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed');
  }
  if (!force || force === 'wasm') {
    require('@tensorflow/tfjs-backend-wasm');
    if (await tf.setBackend('wasm')) return ready({ name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', gpu: false });
    if (force) throw new Error('the wasm backend failed to initialise');
  }
  await tf.setBackend('cpu');
  return ready({ name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', gpu: false });
}

async function ready(info: BackendInfo): Promise<BackendInfo> {
  await tf.ready();
  return info;
}

function tryRequire(pkg: string): boolean {
  try {
    require(pkg);
    return true;
  } catch {
    return false;
  }
}
