import type { JobFence, Metrics, ModelRef, ModelVersionMeta } from '@tq/contracts';
import { modelSaveHandler, readModelArtifacts, type ModelRegistry, type NewVersionMeta } from '@tq/storage';
import { PREPROCESSING_ARTIFACT } from '../inference/artifact-names';
import { quantizeArtifacts, type QuantizeDtype } from './quantize';

export interface CompressOptions {
  dtype: QuantizeDtype;
  /** Registered under this name; the source's name when absent or undefined (the request's optional field). */
  targetName?: string | undefined;
  jobId?: string;
  /** Metrics measured on the compressed model, if the caller evaluated it (the source's are not copied: they describe other weights). */
  metrics?: Partial<Metrics>;
  /** The job's fence: registers at most one version per job, only while the attempt holds it. */
  fence?: JobFence | undefined;
}

export interface CompressOutcome {
  meta: ModelVersionMeta;
  /** model.json + weights.bin of the source and of the new version. */
  bytesBefore: number;
  bytesAfter: number;
}

const MODEL_FILES = ['model.json', 'weights.bin'];
const modelBytes = (m: ModelVersionMeta): number => MODEL_FILES.reduce((n, f) => n + (m.artifacts[f] ?? 0), 0);

/**
 * Registers a weight-quantized copy of a version (lineage: compressed from the source). The
 * topology is unchanged, so stock tf.loadLayersModel loads it and dequantizes to float32: this
 * saves bytes on disk and over the wire, not compute (tfjs has no int8 kernels).
 */
export async function compressVersion(
  registry: ModelRegistry,
  source: ModelRef,
  opts: CompressOptions,
): Promise<CompressOutcome> {
  const parent = await registry.getVersion(source);
  const artifacts = await readModelArtifacts(registry, source);
  const quantized = quantizeArtifacts(artifacts, opts.dtype);
  const meta: NewVersionMeta = {
    inputShape: parent.inputShape,
    featureCount: parent.featureCount,
    classes: parent.classes,
    // A table model stays one: same task, same raw columns, same preprocessing.json (copied below).
    task: parent.task,
    ...(parent.inputColumns ? { inputColumns: parent.inputColumns } : {}),
    // Same inputs, same training rows: the explanations' mean baseline carries over.
    ...(parent.featureMeans ? { featureMeans: parent.featureMeans } : {}),
    ...(parent.layers ? { layers: parent.layers } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    lineage: {
      kind: 'compressed',
      parent: { name: parent.name, version: parent.version },
      compression: { quantize: opts.dtype },
      ...(opts.jobId ? { jobId: opts.jobId } : {}),
      ...(parent.lineage.dataset ? { dataset: parent.lineage.dataset } : {}),
    },
    ...(parent.backend ? { backend: parent.backend } : {}),
    weightDtype: opts.dtype,
  };
  const preprocessing = Object.hasOwn(parent.artifacts, PREPROCESSING_ARTIFACT)
    ? await registry.readArtifact(source, PREPROCESSING_ARTIFACT)
    : undefined;
  const saved = await registry.register(
    opts.targetName ?? source.name,
    meta,
    async (out) => {
      await modelSaveHandler(out).save!(quantized);
      if (preprocessing) await out.put(PREPROCESSING_ARTIFACT, preprocessing);
    },
    { fence: opts.fence },
  );
  return { meta: saved, bytesBefore: modelBytes(parent), bytesAfter: modelBytes(saved) };
}
