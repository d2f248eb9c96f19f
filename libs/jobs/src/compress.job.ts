import * as tf from '@tensorflow/tfjs';
import {
  CancelledError,
  TqError,
  FieldError,
  compressSteps,
  throwIfCancelled,
  type CompressEvaluation,
  type CompressJobData,
  type CompressProgress,
  type CompressResult,
  type JobHooks,
  type Metrics,
  type ModelFigures,
  type ModelVersionMeta,
} from '@tq/contracts';
import {
  checkCompressRequest,
  gateFailures,
  GateRefusedError,
  loadModelVersion,
  modelFigures,
  onnxArtifacts,
  PREPROCESSING_ARTIFACT,
  quantizeArtifacts,
  readPreprocessing,
  resolveExecutionProviders,
  servedArtifact,
  storedCheckpoint,
  tfjsArtifacts,
  trainedVersionOf,
  type BackendInfo,
  type LossSpec,
  type OrtSessionOptions,
  type SpeedOptions,
  type TabularData,
  type VersionFiles,
} from '@tq/ml';
import {
  BlobIntegrityError,
  modelSaveHandler,
  type ArtifactStore,
  type ModelRegistry,
  type NewVersionMeta,
} from '@tq/storage';
import type { CoordinatorDeps } from '@tq/paramserver';
import type { TableDatasets, TableLimits } from '@tq/tables';
import { CALIBRATION_ROWS, tableCalibrationRows } from './compress-calibration';
import { loadSourceData, type SourceData } from './compress-data';
import { compressCheckpointKey, runSteps, type StepsRecord } from './compress-steps';
import { teacherLabelledTable } from './compress-unlabeled';

export interface CompressDeps {
  registry: ModelRegistry;
  /** A DatasetStore (typed by the calls compression makes: an upload's record and its bytes). */
  datasets: TableDatasets;
  backend: BackendInfo;
  /** Bounds on the table read for evaluation, fine-tuning and int8 calibration (@tq/config; the tables defaults when absent). */
  tableLimits?: Partial<TableLimits>;
  /** onnxruntime settings the timings run with (the inference engine's: default providers, a thread per core). */
  ort?: Partial<OrtSessionOptions>;
  /** Where fine-tuning and distillation checkpoint each epoch (a retried job resumes); none: no checkpoints. */
  store?: ArtifactStore;
  /** How long the speed figures run (fewer passes in tests). */
  speed?: SpeedOptions;
  /** Queues and Redis for a prune step's data-parallel fine-tune (`prune.distributed`); the worker's train deps. */
  dataParallel?: CoordinatorDeps;
}

const TFJS_FILES = ['model.json', 'weights.bin'];

/**
 * Runs the request's steps in order on the source (prune in place, quantize as the storage written),
 * evaluates source and result side by side on the source's held-out rows, refuses a result outside
 * the gate, and registers what passed once, fenced, with its ONNX graphs and figures. A retried job
 * whose earlier attempt registered returns that version instead of making another.
 */
export async function compressJob(
  req: CompressJobData,
  deps: CompressDeps,
  hooks: JobHooks<CompressProgress>,
): Promise<CompressResult> {
  const steps = compressSteps(req);
  const source = await deps.registry.getVersion(req.source);
  const earlier = await trainedVersionOf(deps.registry, req.targetName ?? req.source.name, hooks.jobId);
  if (earlier) return resultOf(source, earlier, deps.backend.name);
  checkCompressRequest(req, source);
  await hooks.onProgress({ stage: 'loading', percent: 0 });
  const data = await sourceData(req, source, deps, hooks);
  // The older {quantize} form still works without held-out rows (then without figures); steps and gates need them.
  if (!data?.heldOut && (req.steps !== undefined || req.gate !== undefined))
    throw new FieldError(
      'source',
      `${source.name} v${source.version} has no held-out rows to evaluate on (trained with validationSplit 0, or no dataset recorded)`,
    );
  throwIfCancelled(hooks.signal);
  const loaded = await loadModelVersion(deps.registry, req.source);
  // runSteps disposes the loaded model when it hands back another one, and never the one it returns.
  const { model, record } = await runSteps(loaded.model, steps, {
    data,
    layers: source.layers,
    source,
    store: deps.store,
    dataParallel: deps.dataParallel,
    hooks,
    teacherLabelled: (teacher, id, field) => teacherLabelledTable(teacher, source, id, field, deps, hooks.signal),
  }).catch((err: unknown) => {
    loaded.model.dispose();
    throw err;
  });
  try {
    throwIfCancelled(hooks.signal);
    const dtype = steps.flatMap((s) => ('quantize' in s ? [s.quantize.dtype] : []))[0];
    const files = await modelFiles(model, dtype);
    const preprocessing = await readPreprocessing(deps.registry, req.source, source);
    if (preprocessing)
      files.set(PREPROCESSING_ARTIFACT, await deps.registry.readArtifact(req.source, PREPROCESSING_ARTIFACT));
    // The result as a client loads it (stock tfjs, quantized weights dequantized): exported, evaluated.
    const result = await tf.loadLayersModel({ load: async () => tfjsArtifacts(files) });
    try {
      const calibration =
        dtype !== 'uint8'
          ? undefined
          : data
            ? data.data.x.subarray(0, Math.min(data.trainRows, CALIBRATION_ROWS) * data.data.featureCount)
            : await tableCalibrationRows(deps, source, preprocessing);
      try {
        const onnx = onnxArtifacts(
          result,
          dtype === 'uint8' ? { quantize: 'int8', calibration, preprocessing } : { preprocessing },
        );
        if (onnx.pipelineError) hooks.log(`no whole-pipeline ONNX export: ${onnx.pipelineError.message}`);
        for (const [file, bytes] of onnx.files) files.set(file, bytes);
      } catch (err) {
        hooks.log(`no ONNX export (inference will use tfjs): ${err instanceof Error ? err.message : String(err)}`);
      }
      let evaluation: CompressEvaluation | undefined;
      if (data?.heldOut) {
        await hooks.onProgress({ stage: 'evaluating', percent: 100 });
        evaluation = await evaluateBoth(deps, source, result, files, data.heldOut, data.split);
        const failures = gateFailures(req.gate, evaluation);
        if (failures.length > 0) throw new GateRefusedError(failures, evaluation);
      }
      // The last cancel check: registering is one short write, and a cancel from here on lets it finish.
      throwIfCancelled(hooks.signal);
      await hooks.onProgress({ stage: 'saving', percent: 100 });
      const meta = await deps.registry.register(
        req.targetName ?? req.source.name,
        versionMeta(source, req, hooks.jobId, dtype, record, evaluation),
        async (out) => {
          for (const [file, bytes] of files) await out.put(file, bytes);
        },
        { fence: hooks.fence },
      );
      if (deps.store)
        for (const i of steps.keys())
          await storedCheckpoint(deps.store, compressCheckpointKey(hooks.jobId, i), hooks.fence).clear?.();
      return resultOf(source, meta, deps.backend.name);
    } finally {
      result.dispose();
    }
  } finally {
    model.dispose();
  }
}

/**
 * The source's rows. The older {quantize} form without a gate only calibrates int8 with them, as it
 * always did: when they no longer load (the upload is gone or changed), it goes on without figures
 * and dynamic int8 scales, saying why in the job's log. Everything else needs them and fails.
 */
async function sourceData(
  req: CompressJobData,
  source: ModelVersionMeta,
  deps: CompressDeps,
  hooks: JobHooks<CompressProgress>,
): Promise<SourceData | undefined> {
  try {
    return await loadSourceData(source, deps, hooks.signal);
  } catch (err) {
    // A tampered training set (encryption at rest) fails the job: it is no "data that does not load".
    if (
      req.steps !== undefined ||
      req.gate !== undefined ||
      !(err instanceof TqError) ||
      err instanceof CancelledError ||
      err instanceof BlobIntegrityError
    )
      throw err;
    hooks.log(`no evaluation or int8 calibration: the source's training data does not load: ${err.message}`);
    return undefined;
  }
}

/** The tfjs files of `model` (weights quantized to `dtype` when given), as the registry will store them. */
async function modelFiles(
  model: tf.LayersModel,
  dtype: 'uint8' | 'uint16' | 'float16' | undefined,
): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const capture = {
    put: async (file: string, data: string | Uint8Array) =>
      void files.set(file, typeof data === 'string' ? Buffer.from(data) : data),
  };
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      return modelSaveHandler(capture).save!(dtype ? quantizeArtifacts(artifacts, dtype) : artifacts);
    }),
  );
  return files;
}

/** Source and result on the held-out rows, each timed on the artifact the engine would serve it from. */
async function evaluateBoth(
  deps: CompressDeps,
  meta: ModelVersionMeta,
  result: tf.LayersModel,
  files: VersionFiles,
  heldOut: TabularData,
  split: SourceData['split'],
): Promise<CompressEvaluation> {
  const ort = {
    executionProviders: deps.ort?.executionProviders ?? resolveExecutionProviders(),
    intraOpNumThreads: deps.ort?.intraOpNumThreads ?? 0,
  };
  const table = meta.inputColumns !== undefined;
  // A regression's loss on the held-out rows is the mean squared error on the standardized target
  // (the source's own training loss is not recorded); a classifier's the cross-entropy (the default).
  const loss: LossSpec | undefined = heldOut.task === 'regression' ? { task: 'regression', loss: 'mse' } : undefined;
  const served = servedArtifact(Object.keys(meta.artifacts), table);
  const sourceFiles = new Map<string, Uint8Array>();
  for (const file of new Set([...TFJS_FILES, served]))
    sourceFiles.set(file, await deps.registry.readArtifact(meta, file));
  // The source as stored (its own quantization, if any), not the pruned model still in memory.
  const { model: stored } = await loadModelVersion(deps.registry, meta);
  let s: ModelFigures;
  try {
    s = await modelFigures({
      model: stored,
      heldOut,
      files: sourceFiles,
      artifact: served,
      ort,
      ...(loss ? { loss } : {}),
      ...speed(deps),
    });
  } finally {
    stored.dispose();
  }
  const r = await modelFigures({
    model: result,
    heldOut,
    files,
    artifact: servedArtifact([...files.keys()], table),
    ort,
    ...(loss ? { loss } : {}),
    ...speed(deps),
  });
  const diff = (a: number | undefined, b: number | undefined): number | undefined =>
    a === undefined || b === undefined ? undefined : b - a;
  const delta = {
    ...defined('accuracy', diff(s.accuracy, r.accuracy)),
    ...defined('r2', diff(s.r2, r.r2)),
    ...defined('rmse', diff(s.rmse, r.rmse)),
    gzipRatio: s.bytesGzip / Math.max(1, r.bytesGzip),
    rowsPerSecRatio: s.rowsPerSec > 0 ? r.rowsPerSec / s.rowsPerSec : 0,
  };
  return { rows: heldOut.rows, split, source: s, result: r, delta };
}

const speed = (deps: CompressDeps): { speed?: SpeedOptions } => (deps.speed ? { speed: deps.speed } : {});
const defined = <K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> =>
  v === undefined ? {} : ({ [key]: v } as Record<K, number>);

/** The new version's record: the source's shape, figures as metrics, lineage naming every step and its parameters. */
function versionMeta(
  source: ModelVersionMeta,
  req: CompressJobData,
  jobId: string,
  dtype: string | undefined,
  record: StepsRecord,
  evaluation: CompressEvaluation | undefined,
): NewVersionMeta {
  const { lineage } = source;
  return {
    inputShape: source.inputShape,
    featureCount: source.featureCount,
    classes: source.classes,
    task: source.task,
    ...(source.inputColumns ? { inputColumns: source.inputColumns } : {}),
    // Same inputs, same training rows: the explanations' mean baseline carries over.
    ...(source.featureMeans ? { featureMeans: source.featureMeans } : {}),
    ...(record.layers ? { layers: record.layers } : {}),
    ...(evaluation ? { metrics: metricsOf(evaluation.result), evaluation } : {}),
    lineage: {
      kind: record.distilled ? 'distilled' : 'compressed',
      parent: { name: source.name, version: source.version },
      compression: {
        steps: compressSteps(req),
        ...(dtype ? { quantize: dtype } : {}),
        ...(record.pruned ? { sparsity: record.pruned.sparsity } : {}),
        ...(record.pruned?.kept ? { kept: record.pruned.kept } : {}),
        ...(record.pruned?.fineTune ? { fineTune: record.pruned.fineTune } : {}),
        ...(record.distilled ? { distilled: record.distilled } : {}),
        ...(record.distilledOn ? { distilledOn: record.distilledOn } : {}),
        ...(req.gate ? { gate: req.gate } : {}),
      },
      jobId,
      ...(lineage.dataset ? { dataset: lineage.dataset } : {}),
      ...(lineage.training ? { training: lineage.training } : {}),
    },
    ...(source.backend ? { backend: source.backend } : {}),
    weightDtype: dtype ?? 'float32',
  };
}

/** Held-out figures as the version's metrics (val*: they were measured on the validation split). */
function metricsOf(f: ModelFigures): Partial<Metrics> {
  return {
    loss: f.loss,
    valLoss: f.loss,
    ...(f.accuracy !== undefined ? { valAccuracy: f.accuracy } : {}),
    ...(f.r2 !== undefined ? { valR2: f.r2 } : {}),
    ...(f.rmse !== undefined ? { valRmse: f.rmse } : {}),
  };
}

/** model.json + weights.bin stored. */
const tfjsBytes = (meta: ModelVersionMeta): number => TFJS_FILES.reduce((n, f) => n + (meta.artifacts[f] ?? 0), 0);

function resultOf(source: ModelVersionMeta, made: ModelVersionMeta, backend: string): CompressResult {
  const bytesBefore = tfjsBytes(source);
  const bytesAfter = tfjsBytes(made);
  return {
    model: { name: made.name, version: made.version },
    bytesBefore,
    bytesAfter,
    ratio: bytesBefore / Math.max(bytesAfter, 1),
    backend,
    ...(made.evaluation ? { evaluation: made.evaluation } : {}),
  };
}
