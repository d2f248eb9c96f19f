import type * as tf from '@tensorflow/tfjs';
import {
  cancelRequested,
  stepKind,
  throwIfCancelled,
  type CompressProgress,
  type CompressStep,
  type JobHooks,
  type LayerSpec,
  type ModelVersionMeta,
  type TrainProgress,
} from '@tq/contracts';
import {
  distill,
  pruneModel,
  storedCheckpoint,
  type DistillOutcome,
  type PruneOutcome,
  type TabularData,
} from '@tq/ml';
import type { CoordinatorDeps } from '@tq/paramserver';
import type { ArtifactStore } from '@tq/storage';
import { pruneDataParallel } from './compress-data-parallel';
import type { SourceData } from './compress-data';

/** What the steps did, for the version's lineage and layers. */
export interface StepsRecord {
  pruned?: PruneOutcome;
  distilled?: DistillOutcome['fineTune'];
  /** distill over an upload: which, and its rows (labelled by the teacher). */
  distilledOn?: { id: string; rows: number };
  /** The layer list of the model the steps left (undefined when the source records none). */
  layers?: LayerSpec[] | undefined;
}

/** The checkpoint key of step `i` of compress job `jobId` (ArtifactStore.checkpointPrefix). */
export const compressCheckpointKey = (jobId: string, step: number): string => `compress-${jobId}-step${step}`;

/**
 * Runs the model-changing steps (distill, prune) in order; quantize is how the result is stored, so
 * the caller applies it. Returns the model the steps left: `model` itself, or a new one (a student,
 * a structurally pruned model), in which case the one given is disposed. On an error the model
 * this call made is disposed and the one given is left to the caller.
 */
export async function runSteps(
  source: tf.LayersModel,
  steps: CompressStep[],
  ctx: {
    data: SourceData | undefined;
    layers: LayerSpec[] | undefined;
    /** The registered source (a data-parallel fine-tune starts its run from it). */
    source: ModelVersionMeta;
    store?: ArtifactStore | undefined;
    /** Queues and Redis for `prune.distributed` runs; absent: such a step is refused. */
    dataParallel?: CoordinatorDeps | undefined;
    hooks: JobHooks<CompressProgress>;
    /** distill's `dataset`: the upload, labelled by the teacher (teacherLabelledTable). */
    teacherLabelled: (teacher: tf.LayersModel, id: string, field: string) => Promise<TabularData>;
  },
): Promise<{ model: tf.LayersModel; record: StepsRecord }> {
  const { hooks, data } = ctx;
  let model = source;
  const record: StepsRecord = { layers: ctx.layers };
  const swap = (next: tf.LayersModel): void => {
    if (next === model) return;
    if (model !== source) model.dispose();
    model = next;
  };
  try {
    for (const [i, step] of steps.entries()) {
      throwIfCancelled(hooks.signal);
      const at = { step: i, kind: stepKind(step) };
      await hooks.onProgress({ stage: 'compressing', percent: (100 * i) / steps.length, ...at });
      const training = {
        split: data?.split ?? { validationSplit: 0, seed: 1 },
        shouldStop: () => cancelRequested(hooks.signal),
        onProgress: (p: TrainProgress) => hooks.onProgress(stepProgress(p, i, steps.length, at)),
        ...(ctx.store
          ? { checkpoint: storedCheckpoint(ctx.store, compressCheckpointKey(hooks.jobId, i), hooks.fence) }
          : {}),
      };
      if ('distill' in step) {
        const upload = step.distill.dataset;
        const rows = upload ? await ctx.teacherLabelled(model, upload.id, `steps.${i}.distill.dataset`) : data?.data;
        if (!rows) throw new Error('distillation needs the source training data');
        const made = await distill(model, step.distill, {
          ...training,
          data: rows,
          field: `steps.${i}.distill.student`,
        });
        if (upload) record.distilledOn = { id: upload.id, rows: rows.rows };
        swap(made.student);
        record.distilled = made.fineTune;
        record.layers =
          'layers' in step.distill.student
            ? step.distill.student.layers
            : scaled(record.layers, step.distill.student.width);
      } else if ('prune' in step && step.prune.distributed) {
        // The schema keeps it first among the model-changing steps: `model` is the source as loaded.
        record.pruned = await pruneDataParallel(
          model,
          { ...step.prune, distributed: step.prune.distributed },
          {
            source: ctx.source,
            split: training.split,
            deps: ctx.dataParallel,
            hooks: { ...hooks, onProgress: training.onProgress },
            field: `steps.${i}.prune.distributed`,
          },
        );
      } else if ('prune' in step) {
        const pruned = await pruneModel(model, step.prune, {
          ...training,
          data: data?.data,
          field: `steps.${i}.prune.structured`,
        });
        swap(pruned.model);
        record.pruned = pruned;
        if (pruned.kept)
          record.layers = resized(
            record.layers,
            Object.values(pruned.kept).map(([n]) => n),
          );
      }
    }
  } catch (err) {
    if (model !== source) model.dispose();
    throw err;
  }
  if (model !== source) source.dispose();
  return { model, record };
}

/** A training progress report as the step's share of the job's. */
function stepProgress(
  p: TrainProgress,
  i: number,
  steps: number,
  at: Pick<CompressProgress, 'step' | 'kind'>,
): CompressProgress {
  return {
    stage: 'compressing',
    percent: (100 * (i + p.percent / 100)) / steps,
    ...at,
    ...(p.epoch !== undefined ? { epoch: p.epoch } : {}),
    ...(p.epochs !== undefined ? { epochs: p.epochs } : {}),
    ...(p.loss !== undefined ? { loss: p.loss } : {}),
  };
}

/** Dense units and conv filters set to `sizes` in order (the last weighted layer keeps its size when sizes run out). */
function resized(layers: LayerSpec[] | undefined, sizes: number[]): LayerSpec[] | undefined {
  let at = 0;
  return layers?.map((layer) => {
    if ((layer.type !== 'dense' && layer.type !== 'conv2d') || at >= sizes.length) return layer;
    const n = sizes[at++]!;
    return layer.type === 'dense' ? { ...layer, units: n } : { ...layer, filters: n };
  });
}

/** The width student's layers: every dense/conv2d but the last at round(width × size), as buildStudent makes it. */
function scaled(layers: LayerSpec[] | undefined, width: number): LayerSpec[] | undefined {
  if (!layers) return undefined;
  const weighted = layers.filter((l) => l.type === 'dense' || l.type === 'conv2d');
  const sizes = weighted
    .slice(0, -1)
    .map((l) => Math.max(1, Math.round((l.type === 'dense' ? l.units : l.type === 'conv2d' ? l.filters : 0) * width)));
  return resized(layers, sizes);
}
