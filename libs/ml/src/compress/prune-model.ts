import type * as tf from '@tensorflow/tfjs';
import { fitSchema, type PruneSpec, type TrainProgress } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import type { CheckpointStore } from '../train/checkpoint';
import { trainModel, type TrainOutcome } from '../train/train-loop';
import { structuredPrune } from './structured';
import { applyMasks, kernelSparsity, magnitudeMasks } from './prune';

export interface PruneRun {
  /** The source's rows (training then held-out) and how they split: fine-tuning trains on the training rows only. */
  data?: TabularData | undefined;
  split: { validationSplit: number; seed: number };
  onProgress?: (p: TrainProgress) => void | Promise<void>;
  shouldStop?: () => boolean | Promise<boolean>;
  /** Saved after every fine-tuning epoch, loaded at its start: a retried job resumes the fine-tune. */
  checkpoint?: CheckpointStore | undefined;
  /** Named when structured pruning refuses a layer (the step's field). */
  field: string;
}

export interface PruneOutcome {
  /** The pruned model: the one given (pruned in place), or a new smaller one after structured pruning (the caller disposes both). */
  model: tf.LayersModel;
  /** Structured: units (filters) kept of each pruned layer, [kept, before]. */
  kept?: Record<string, [number, number]>;
  /** Share of the dense/conv kernel weights that are zero afterwards. */
  sparsity: number;
  fineTune?: Pick<TrainOutcome, 'epochs' | 'metrics' | 'samplesPerSec'>;
}

/**
 * Magnitude-prunes `model` in place: one-shot (masks at the target, then optional fine-tuning with
 * them held fixed) or polynomial (the sparsity rising while it fine-tunes): trainModel's `fit.prune`
 * (SparsityHold) re-applies the masks after every optimizer step, so no pruned weight grows back
 * whichever kernels ran the update. Structured: a smaller model, then plain fine-tuning.
 */
export async function pruneModel(source: tf.LayersModel, spec: PruneSpec, run: PruneRun): Promise<PruneOutcome> {
  if (!spec.structured) return unstructured(source, spec, run);
  const { model, kept } = await structuredPrune(source, spec.sparsity, run.field);
  try {
    const fineTune = spec.fineTuneEpochs > 0 ? await fineTuneModel(model, spec, run, false) : undefined;
    return { model, kept, sparsity: kernelSparsity(model), ...(fineTune ? { fineTune } : {}) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

async function unstructured(model: tf.LayersModel, spec: PruneSpec, run: PruneRun): Promise<PruneOutcome> {
  if (spec.fineTuneEpochs === 0) {
    applyMasks(magnitudeMasks(model, { scope: spec.scope, sparsity: spec.sparsity }));
    return { model, sparsity: kernelSparsity(model) };
  }
  const fineTune = await fineTuneModel(model, spec, run, true);
  return { model, sparsity: kernelSparsity(model), fineTune };
}

/** fineTuneEpochs of adam on the source's training rows (its split and seed), the prune's masks held when `masked`. */
async function fineTuneModel(
  model: tf.LayersModel,
  spec: PruneSpec,
  run: PruneRun,
  masked: boolean,
): Promise<NonNullable<PruneOutcome['fineTune']>> {
  if (!run.data) throw new Error('fine-tuning a pruned model needs the source training data');
  const fit = fitSchema.parse({
    epochs: spec.fineTuneEpochs,
    batchSize: spec.batchSize,
    learningRate: spec.learningRate,
    optimizer: 'adam',
    validationSplit: run.split.validationSplit,
    seed: run.split.seed,
    ...(masked ? { prune: { sparsity: spec.sparsity, scope: spec.scope, schedule: spec.schedule } } : {}),
  });
  const tuned = await trainModel({
    model,
    data: run.data,
    fit,
    modelField: 'source',
    ...(run.onProgress ? { onProgress: run.onProgress } : {}),
    ...(run.shouldStop ? { shouldStop: run.shouldStop } : {}),
    ...(run.checkpoint ? { checkpoint: run.checkpoint } : {}),
  });
  return { epochs: tuned.epochs, metrics: tuned.metrics, samplesPerSec: tuned.samplesPerSec };
}
