import type * as tf from '@tensorflow/tfjs';
import { fitSchema, type PruneSpec, type TrainProgress } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import type { CheckpointStore } from '../train/checkpoint';
import { trainModel, type TrainOutcome } from '../train/train-loop';
import { structuredPrune } from './structured';
import { applyMasks, kernelSparsity, magnitudeMasks, polynomialSparsity, type PruneMask } from './prune';

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

/** Mask updates over a polynomial schedule (Zhu & Gupta prune every Δt steps, not every step). */
const SCHEDULE_UPDATES = 16;
/**
 * The share of the fine-tuning steps over which the sparsity rises; the rest trains at the target
 * with the masks fixed, so the network recovers from the last prune (Zhu & Gupta end pruning before
 * training ends for the same reason).
 */
const RAMP_SHARE = 0.75;

/**
 * Magnitude-prunes `model` in place: one-shot (masks at the target, then optional fine-tuning with
 * them held fixed) or polynomial (masks recomputed SCHEDULE_UPDATES times as the sparsity rises over
 * the first RAMP_SHARE of the steps,
 * the last at the target). Masks are re-applied after every optimizer step, so no pruned weight
 * grows back whichever kernels ran the update.
 */
export async function pruneModel(source: tf.LayersModel, spec: PruneSpec, run: PruneRun): Promise<PruneOutcome> {
  if (!spec.structured) return unstructured(source, spec, run);
  const { model, kept } = await structuredPrune(source, spec.sparsity, run.field);
  try {
    const fineTune = spec.fineTuneEpochs > 0 ? await fineTuneModel(model, spec, run, () => undefined) : undefined;
    return { model, kept, sparsity: kernelSparsity(model), ...(fineTune ? { fineTune } : {}) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

async function unstructured(model: tf.LayersModel, spec: PruneSpec, run: PruneRun): Promise<PruneOutcome> {
  const options = { scope: spec.scope };
  let masks: PruneMask[] = magnitudeMasks(model, {
    ...options,
    sparsity: spec.schedule === 'oneShot' ? spec.sparsity : 0,
  });
  applyMasks(masks);
  if (spec.fineTuneEpochs === 0) return { model, sparsity: kernelSparsity(model) };
  let updated = 0;
  const fineTune = await fineTuneModel(model, spec, run, (step, steps) => {
    if (spec.schedule === 'polynomial') {
      const ramp = Math.max(1, Math.ceil(RAMP_SHARE * steps));
      // The first update of a run resumed from a checkpoint comes at once, wherever the schedule is.
      const due =
        step === ramp ||
        (step < ramp && step >= ((updated + 1) * ramp) / SCHEDULE_UPDATES) ||
        (updated === 0 && step > ramp);
      if (due) {
        updated++;
        const sparsity = polynomialSparsity(spec.sparsity, Math.min(step, ramp), ramp);
        masks = magnitudeMasks(model, { ...options, sparsity });
      }
    }
    applyMasks(masks);
  });
  return { model, sparsity: kernelSparsity(model), fineTune };
}

/** fineTuneEpochs of adam on the source's training rows (its split and seed), `afterStep` after every optimizer step. */
async function fineTuneModel(
  model: tf.LayersModel,
  spec: PruneSpec,
  run: PruneRun,
  afterStep: (step: number, steps: number) => void,
): Promise<NonNullable<PruneOutcome['fineTune']>> {
  if (!run.data) throw new Error('fine-tuning a pruned model needs the source training data');
  const fit = fitSchema.parse({
    epochs: spec.fineTuneEpochs,
    batchSize: spec.batchSize,
    learningRate: spec.learningRate,
    optimizer: 'adam',
    validationSplit: run.split.validationSplit,
    seed: run.split.seed,
  });
  const tuned = await trainModel({
    model,
    data: run.data,
    fit,
    modelField: 'source',
    ...(run.onProgress ? { onProgress: run.onProgress } : {}),
    ...(run.shouldStop ? { shouldStop: run.shouldStop } : {}),
    ...(run.checkpoint ? { checkpoint: run.checkpoint } : {}),
    afterStep,
  });
  return { epochs: tuned.epochs, metrics: tuned.metrics, samplesPerSec: tuned.samplesPerSec };
}
