import * as tf from '@tensorflow/tfjs';
import { installFastKernels } from '../kernels';

export type BackendKind = 'tensorflow' | 'wasm' | 'cpu';
export interface BackendInfo {
  /** tfjs backend name as tf.getBackend() reports it. */
  name: string;
  /** Which package provided it, e.g. "@tensorflow/tfjs-node-gpu". */
  provider: string;
  gpu: boolean;
  /** Kernels replaced or added by libs/ml/src/kernels for this backend (empty on native backends). */
  fastKernels: string[];
  /** Optional providers tried before this one and why each was not used. */
  skipped: { provider: string; reason: string }[];
}
export interface InitBackendOptions {
  /** Where the reason a native package failed to load goes (a package that is simply absent is only recorded in `skipped`). */
  warn?: (message: string) => void;
}

/** Native bindings first: they cannot install on every machine, so they are optional and probed. */
const NATIVE_PROVIDERS = [
  { pkg: '@tensorflow/tfjs-node-gpu', gpu: true },
  { pkg: '@tensorflow/tfjs-node', gpu: false },
] as const;

let current: Promise<BackendInfo> | undefined;

/**
 * Chooses the compute backend once per process: tfjs-node-gpu, tfjs-node, wasm, cpu (or the one
 * `force` names), then installs the fast training kernels for it before anything trains.
 * Idempotent; every caller awaits the same choice.
 */
export function initBackend(force?: BackendKind, options: InitBackendOptions = {}): Promise<BackendInfo> {
  current ??= chooseBackend(force, options.warn ?? ((m) => console.warn(m)));
  return current;
}

async function chooseBackend(force: BackendKind | undefined, warn: (message: string) => void): Promise<BackendInfo> {
  const skipped: BackendInfo['skipped'] = [];
  if (!force || force === 'tensorflow') {
    for (const { pkg, gpu } of NATIVE_PROVIDERS) {
      const failure = tryRequire(pkg);
      if (failure === undefined && (await tf.setBackend('tensorflow')))
        return ready({ name: 'tensorflow', provider: pkg, gpu }, skipped);
      const reason = failure ?? 'loaded, but tf.setBackend("tensorflow") failed';
      skipped.push({ provider: pkg, reason });
      if (reason !== NOT_INSTALLED) warn(`tfjs backend: ${pkg} is installed but unusable: ${reason}`);
    }
    if (force) throw new Error(`TQ_BACKEND=tensorflow but no native backend loads: ${describe(skipped)}`);
  }
  if (!force || force === 'wasm') {
    const failure = tryRequire('@tensorflow/tfjs-backend-wasm');
    if (failure === undefined && (await tf.setBackend('wasm')))
      return ready({ name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', gpu: false }, skipped);
    skipped.push({ provider: '@tensorflow/tfjs-backend-wasm', reason: failure ?? 'tf.setBackend("wasm") failed' });
    if (force) throw new Error(`TQ_BACKEND=wasm but the wasm backend failed to initialise: ${describe(skipped)}`);
    warn(`tfjs backend: falling back to cpu: ${describe(skipped)}`);
  }
  await tf.setBackend('cpu');
  return ready({ name: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', gpu: false }, skipped);
}

async function ready(
  info: Omit<BackendInfo, 'fastKernels' | 'skipped'>,
  skipped: BackendInfo['skipped'],
): Promise<BackendInfo> {
  await tf.ready();
  return { ...info, fastKernels: installFastKernels(info.name), skipped };
}

const NOT_INSTALLED = 'not installed';

/** undefined when `pkg` loaded; else why not ("not installed" only when the package itself is absent). */
function tryRequire(pkg: string): string | undefined {
  try {
    // An optional package named at run time: only require() says synchronously why it is absent.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(pkg);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${pkg}'`)) return NOT_INSTALLED;
    // e.g. libtensorflow.so or CUDA libraries missing: the package is there but its addon fails.
    return e.message.split('\n')[0] ?? String(err);
  }
}

function describe(skipped: BackendInfo['skipped']): string {
  return skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ');
}
