import * as tf from '@tensorflow/tfjs';
import { captureState, restoreState, type EarlyStoppingState, type EncodedTensors, type TrainCheckpoint } from '@tq/ml';
import { readBlocksFile, writeBlocksFile, type BlobRef } from '@tq/storage';

/** The aggregator's checkpoint file kind (see @tq/storage's blocks file). */
const MAGIC = 'TQPS';

export interface WorkerShare {
  samples: number;
  stepMs: number;
  dropped?: number;
}

/** Everything of a run the aggregator must not lose; checkpointed with the weights and optimizer slots. */
export interface AggregatorState {
  /** sync/local: the next global step; async: gradients applied so far. */
  step: number;
  /** Last published weights version (monotonic across restarts). */
  version: number;
  droppedStale: number;
  /** Rows behind applied updates, and training wall time (ms), over all attempts. */
  samples: number;
  trainMs: number;
  /** The epoch being accumulated: sample-weighted loss and correct-count sums, as trainModel keeps them. */
  epoch: EpochSums;
  history: Array<Record<string, number>>;
  workers: Record<string, WorkerShare>;
  /** Shards whose jobs failed for good (coordinator's word) and, in async mode, shards that finished. */
  gone: number[];
  done: number[];
  /** async: local steps each shard has consumed (applied or dropped). */
  shardSteps: number[];
  restarts: number;
  /** sync/local steps closed on the step timeout without every awaited shard (older checkpoints: absent). */
  timedOutSteps?: number;
  resumedFromStep?: number;
  /** fit.earlyStopping: where it stands (its best epoch's weights are the checkpoint's `best` block). */
  earlyStopping?: EarlyStoppingState;
}

/**
 * The epoch being accumulated. Regression's error sums are optional: a checkpoint written before
 * they existed resumes with none (that epoch's mae/rmse/r2 then cover its later steps only).
 */
export interface EpochSums {
  index: number;
  lossSum: number;
  correct: number;
  samples: number;
  absErr?: number;
  sqErr?: number;
}

/** A new epoch's sums. */
export function epochStart(index: number): EpochSums {
  return { index, lossSum: 0, correct: 0, samples: 0, absErr: 0, sqErr: 0 };
}

export function freshState(shards: number): AggregatorState {
  return {
    step: 0,
    version: 0,
    droppedStale: 0,
    samples: 0,
    trainMs: 0,
    epoch: epochStart(0),
    history: [],
    workers: {},
    gone: [],
    done: [],
    shardSteps: new Array<number>(shards).fill(0),
    restarts: 0,
    timedOutSteps: 0,
  };
}

interface Header {
  state: AggregatorState;
  fingerprint: string;
  weights: tf.io.WeightsManifestEntry[];
  optimizer: tf.io.WeightsManifestEntry[];
  optimizerExtra: Record<string, number>;
  metrics?: Record<string, number>;
  /** fit.earlyStopping: the best epoch's weights, so a resumed aggregator keeps them and its patience count. */
  best?: tf.io.WeightsManifestEntry[];
}

/**
 * Model weights (all of them, batch-norm statistics included) and optimizer slots are captured with
 * @tq/ml's captureState, which also keeps Adam's running beta powers bit for bit: a resumed run
 * continues exactly as the uninterrupted one would have.
 */
export async function saveAggregatorCheckpoint(
  path: BlobRef,
  state: AggregatorState,
  fingerprint: string,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  extra: { metrics?: Record<string, number>; best?: EncodedTensors; beforeCommit?: () => Promise<void> } = {},
): Promise<void> {
  const cap = await captureState(model, optimizer);
  const { metrics, best } = extra;
  const header: Header = {
    state,
    fingerprint,
    weights: cap.weights.specs,
    optimizer: cap.optimizer.specs,
    optimizerExtra: cap.optimizerExtra,
    ...(metrics ? { metrics } : {}),
    ...(best ? { best: best.specs } : {}),
  };
  await writeBlocksFile(
    path,
    MAGIC,
    header,
    { weights: cap.weights.data, optimizer: cap.optimizer.data, ...(best ? { best: best.data } : {}) },
    extra.beforeCommit,
  );
}

export interface LoadedCheckpoint {
  state: AggregatorState;
  metrics?: Record<string, number>;
  /** fit.earlyStopping's best epoch's weights, when the run monitors one. */
  best?: EncodedTensors;
  /** Puts the weights into `model` and the slots into a fresh, never-stepped `optimizer`. */
  restore(model: tf.LayersModel, optimizer: tf.Optimizer): Promise<void>;
}

/** The checkpoint at `path` if it belongs to this run (same fingerprint); null otherwise. */
export async function loadAggregatorCheckpoint(path: BlobRef, fingerprint: string): Promise<LoadedCheckpoint | null> {
  const file = await readBlocksFile<Header>(path, MAGIC);
  if (!file || file.header.fingerprint !== fingerprint) return null;
  const h = file.header;
  const ckpt: TrainCheckpoint = {
    epoch: 0,
    history: [],
    trainSamples: 0,
    trainMs: 0,
    fingerprint,
    weights: { specs: h.weights, data: file.blocks.weights! },
    optimizer: { specs: h.optimizer, data: file.blocks.optimizer! },
    optimizerExtra: h.optimizerExtra,
  };
  return {
    state: h.state,
    ...(h.metrics ? { metrics: h.metrics } : {}),
    ...(h.best && file.blocks.best ? { best: { specs: h.best, data: file.blocks.best } } : {}),
    restore: (model, optimizer) => restoreState(model, optimizer, ckpt),
  };
}

/** Loads only the model weights of a checkpoint into `model` (the coordinator registering the result). */
export async function loadCheckpointWeights(
  path: BlobRef,
  model: tf.LayersModel,
): Promise<{ state: AggregatorState; metrics?: Record<string, number> }> {
  const file = await readBlocksFile<Header>(path, MAGIC);
  if (!file) throw new Error(`no checkpoint at ${path.key}`);
  const map = tf.io.decodeWeights(file.blocks.weights!, file.header.weights);
  const tensors = file.header.weights.map((s) => map[s.name]!);
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
  return { state: file.header.state, ...(file.header.metrics ? { metrics: file.header.metrics } : {}) };
}
