import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';

/**
 * The onnxruntime execution providers sessions use, best first; 'cpu' always closes the list so a
 * node the GPU provider cannot run still runs.
 *
 * `setting` is the ORT_EXECUTION_PROVIDERS value (comma-separated, e.g. "cuda,cpu"); each name must be
 * one onnxruntime-node lists. Unset: 'cuda' when its provider library is installed, else CPU only.
 * onnxruntime-node always *lists* cuda on linux/x64 (bundled: false); the library itself arrives only
 * when the package's install script downloads it (ONNXRUNTIME_NODE_INSTALL=cuda12 — this project's
 * package.json allowScripts denies that script, so CPU machines never pay for it), so its presence is
 * the real signal.
 */
export function resolveExecutionProviders(setting?: string): string[] {
  const supported = ort.listSupportedBackends().map((b) => b.name);
  if (setting !== undefined && setting.trim() !== '') {
    const names = setting
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean);
    const unknown = names.filter((n) => !supported.includes(n));
    if (unknown.length > 0)
      throw new Error(
        `ORT_EXECUTION_PROVIDERS: unknown provider(s) ${unknown.join(', ')}; onnxruntime-node offers ${supported.join(', ')}`,
      );
    return names.includes('cpu') ? names : [...names, 'cpu'];
  }
  return supported.includes('cuda') && cudaProviderInstalled() ? ['cuda', 'cpu'] : ['cpu'];
}

/** Whether onnxruntime-node's CUDA provider library sits beside its binding (where its installer puts it). */
export function cudaProviderInstalled(): boolean {
  const root = dirname(require.resolve('onnxruntime-node/package.json'));
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  return existsSync(join(root, 'bin', 'napi-v6', process.platform, process.arch, lib));
}
