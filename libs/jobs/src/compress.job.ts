import {
  BUILTIN_DATASETS,
  throwIfCancelled,
  TqError,
  type CompressJobData,
  type CompressProgress,
  type CompressResult,
  type JobHooks,
  type ModelVersionMeta,
  type PreprocessingSpec,
} from '@tq/contracts';
import {
  attachOnnx,
  compressVersion,
  trainedVersionOf,
  loadModelVersion,
  readPreprocessing,
  loadBuiltinDataset,
  type BackendInfo,
} from '@tq/ml';
import type { DatasetStore, ModelRegistry } from '@tq/storage';
import type { TableLimits } from '@tq/tables';
import { openEncodedTable, type TableSources } from './table-rows';

export interface CompressDeps {
  registry: ModelRegistry;
  datasets: DatasetStore & TableSources;
  backend: BackendInfo;
  /** Bounds on the table read for int8 calibration (@tq/config; the tables defaults when absent). */
  tableLimits?: Partial<TableLimits>;
}

/** Rows of the training data used to calibrate int8 activation scales. */
const CALIBRATION_ROWS = 512;

/**
 * Weight quantization as a new version (lineage: compressed from the source). uint8 also gets an
 * int8 ONNX graph, so the smaller model is faster to serve too, not only to store.
 */
export async function compressJob(
  req: CompressJobData,
  deps: CompressDeps,
  hooks: JobHooks<CompressProgress>,
): Promise<CompressResult> {
  const dtype = req.quantize?.dtype ?? 'uint8';
  await hooks.onProgress({ stage: 'compressing', percent: 10 });
  throwIfCancelled(hooks.signal);
  // A retried job (its worker died after registering) finishes the version it made instead of adding another.
  const earlier = await trainedVersionOf(deps.registry, req.targetName ?? req.source.name, hooks.jobId);
  const made = earlier
    ? {
        meta: earlier,
        bytesBefore: tfjsBytes(await deps.registry.getVersion(req.source)),
        bytesAfter: tfjsBytes(earlier),
      }
    : await compressVersion(deps.registry, req.source, {
        dtype,
        targetName: req.targetName,
        jobId: hooks.jobId,
        fence: hooks.fence,
      });
  const ref = { name: made.meta.name, version: made.meta.version };
  // No cancel check from here on: the version is registered, and stopping now would leave it
  // without its ONNX graph while the job reports "cancelled". Attaching it is the last short step.
  await hooks.onProgress({ stage: 'saving', percent: 80 });
  const { model } = await loadModelVersion(deps.registry, ref);
  // A table model's ONNX graphs carry its pipeline too (model*.onnx raw columns in, network*.onnx for the engine).
  const preprocessing = await readPreprocessing(deps.registry, ref, made.meta);
  try {
    await attachOnnx(
      deps.registry,
      ref,
      model,
      dtype === 'uint8'
        ? {
            quantize: 'int8',
            calibration: await calibrationRows(deps, made.meta.lineage.parent, preprocessing),
            preprocessing,
          }
        : { preprocessing },
    );
  } finally {
    model.dispose();
  }
  return {
    model: ref,
    bytesBefore: made.bytesBefore,
    bytesAfter: made.bytesAfter,
    ratio: made.bytesBefore / Math.max(made.bytesAfter, 1),
    backend: deps.backend.name,
  };
}

/** Bytes of the tfjs artifacts (what compression shrinks), the same measure compressVersion reports. */
function tfjsBytes(meta: ModelVersionMeta): number {
  return (meta.artifacts['model.json'] ?? 0) + (meta.artifacts['weights.bin'] ?? 0);
}

/**
 * The first rows of the data the source was trained on, when its lineage still names that data: a
 * builtin dataset's matrix, or an uploaded table's rows encoded with the model's preprocessing.
 */
async function calibrationRows(
  deps: CompressDeps,
  parent: { name: string; version: number } | undefined,
  spec: PreprocessingSpec | undefined,
): Promise<Float32Array | undefined> {
  if (!parent) return undefined;
  const dataset = (await deps.registry.getVersion(parent)).lineage.dataset;
  if (dataset?.id && spec) return tableRows(deps, dataset.id, spec);
  const builtin = BUILTIN_DATASETS.find((name) => name === dataset?.builtin);
  // No rows to calibrate on (an uploaded id without preprocessing.json: a version from before tables
  // had one): int8 falls back to dynamic activation scales.
  if (!builtin) return undefined;
  const data = loadBuiltinDataset(builtin);
  return data.x.subarray(0, Math.min(data.rows, CALIBRATION_ROWS) * data.featureCount);
}

/** The table's first rows, encoded; none (dynamic int8 scales) when the upload is gone or no longer reads. */
async function tableRows(deps: CompressDeps, id: string, spec: PreprocessingSpec): Promise<Float32Array | undefined> {
  try {
    const opened = await openEncodedTable(deps.datasets, id, spec, {
      chunkRows: CALIBRATION_ROWS,
      field: 'dataset',
      limits: deps.tableLimits,
    });
    const first = await opened.chunks.next();
    await opened.chunks.return(undefined); // stops reading and closes the source
    return first.done ? undefined : first.value.features;
  } catch (err) {
    if (err instanceof TqError) return undefined;
    throw err;
  }
}
