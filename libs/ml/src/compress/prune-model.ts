import type * as tf from '@tensorflow/tfjs';
import { fitSchema, type PruneSpec, type TrainProgress } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import { trainModel, type TrainOutcome } from '../train/train-loop';
import { applyMasks, kernelSparsity, magnitudeMasks, polynomialSparsity, type PruneMask } from './prune';

export interface PruneRun {
  /** The source's rows (training then held-out) and how they split: fine-tuning trains on the training rows only. */
  data?: TabularData | undefined;
  split: { validationSplit: number; seed: number };
  onProgress?: (p: TrainProgress) => void | Promise<void>;
  shouldStop?: () => boolean | Promise<boolean>;
}

export interface PruneOutcome {
  /** Share of the dense/conv kernel weights that are zero afterwards. */
  sparsity: number;
  fineTune?: Pick<TrainOutcome, 'epochs' | 'metrics' | 'samplesPerSec'>;
}

/** Mask updates over a polynomial schedule (Zhu & Gupta prune every Δt steps, not every step). */
const SCHEDULE_UPDATES = 16;

/**
 * Magnitude-prunes `model` in place: one-shot (masks at the target, then optional fine-tuning with
 * them held fixed) or polynomial (masks recomputed SCHEDULE_UPDATES times as the sparsity rises,
 * the last at the target). Masks are re-applied after every optimizer step, so no pruned weight
 * grows back whichever kernels ran the update.
 */
export async function pruneModel(model: tf.LayersModel, spec: PruneSpec, run: PruneRun): Promise<PruneOutcome> {
  const options = { scope: spec.scope };
  let masks: PruneMask[] = magnitudeMasks(model, {
    ...options,
    sparsity: spec.schedule === 'oneShot' ? spec.sparsity : 0,
  });
  applyMasks(masks);
  if (spec.fineTuneEpochs === 0) return { sparsity: kernelSparsity(model) };
  if (!run.data) throw new Error('fine-tuning a pruned model needs the source training data');
  const fit = fitSchema.parse({
    epochs: spec.fineTuneEpochs,
    batchSize: spec.batchSize,
    learningRate: spec.learningRate,
    optimizer: 'adam',
    validationSplit: run.split.validationSplit,
    seed: run.split.seed,
  });
  let updated = 0;
  const tuned = await trainModel({
    model,
    data: run.data,
    fit,
    modelField: 'source',
    ...(run.onProgress ? { onProgress: run.onProgress } : {}),
    ...(run.shouldStop ? { shouldStop: run.shouldStop } : {}),
    afterStep: (step, steps) => {
      if (spec.schedule === 'polynomial') {
        const due = step === steps || step >= ((updated + 1) * steps) / SCHEDULE_UPDATES;
        if (due) {
          updated++;
          masks = magnitudeMasks(model, { ...options, sparsity: polynomialSparsity(spec.sparsity, step, steps) });
        }
      }
      applyMasks(masks);
    },
  });
  return {
    sparsity: kernelSparsity(model),
    fineTune: { epochs: tuned.epochs, metrics: tuned.metrics, samplesPerSec: tuned.samplesPerSec },
  };
}
