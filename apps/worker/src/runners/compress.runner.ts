import type { CompressProgress, CompressRequest, CompressResult } from '@tq/contracts';
import { attachOnnx, compressVersion, loadModelVersion, type BackendInfo } from '@tq/ml';
import type { ModelRegistry } from '@tq/storage';

export interface CompressDeps { registry: ModelRegistry; backend: BackendInfo }

/**
 * Weight quantization as a new version (lineage: compressed from the source). uint8 also gets an
 * int8 ONNX graph, so the smaller model is faster to serve too, not only to store.
 */
export async function runCompression(req: CompressRequest, deps: CompressDeps, hooks: { jobId: string; onProgress: (p: CompressProgress) => Promise<void> }): Promise<CompressResult> {
  const dtype = req.quantize?.dtype ?? 'uint8';
  await hooks.onProgress({ stage: 'compressing', percent: 10 });
  const made = await compressVersion(deps.registry, req.source, { dtype, targetName: req.targetName, jobId: hooks.jobId });
  const ref = { name: made.meta.name, version: made.meta.version };
  await hooks.onProgress({ stage: 'saving', percent: 80 });
  const { model } = await loadModelVersion(deps.registry, ref);
  try {
    await attachOnnx(deps.registry, ref, model, dtype === 'uint8' ? { quantize: 'int8' } : {});
  } finally {
    model.dispose();
  }
  return { model: ref, bytesBefore: made.bytesBefore, bytesAfter: made.bytesAfter, ratio: made.bytesBefore / Math.max(made.bytesAfter, 1), backend: deps.backend.name };
}
