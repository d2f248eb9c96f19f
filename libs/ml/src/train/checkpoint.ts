import * as tf from '@tensorflow/tfjs';
import type { JobFence } from '@tq/contracts';
import { ArtifactStore, readBlocksFile, writeBlocksFile } from '@tq/storage';

/** Tensors in tfjs's binary weight format (io.encodeWeights), in a fixed order. */
export interface EncodedTensors {
  specs: tf.io.WeightsManifestEntry[];
  data: ArrayBuffer;
}

/** Where early stopping stands after an epoch: kept in the checkpoint so a resumed run decides alike. */
export interface EarlyStoppingState {
  bestEpoch: number;
  bestValue: number;
  /** Epochs since the best one. */
  wait: number;
  /** Set once patience ran out: a resumed run trains no further. */
  stopped: boolean;
}

/** Everything needed to continue a run after its last completed epoch as if it had never stopped. */
export interface TrainCheckpoint {
  /** Epochs completed. */
  epoch: number;
  history: Array<Record<string, number>>;
  /** model.getWeights(), trainable and not (batch-norm statistics), in order. */
  weights: EncodedTensors;
  /** optimizer.getWeights(): iteration count and slots, in order. */
  optimizer: EncodedTensors;
  /** Optimizer state tfjs's getWeights leaves out (Adam's running beta powers), restored bit for bit. */
  optimizerExtra: Record<string, number>;
  /** Samples trained and milliseconds spent in the batch loop so far, for an honest samples/s after a resume. */
  trainSamples: number;
  trainMs: number;
  /** Model shapes, data size and fit settings: a checkpoint of another run is never resumed. */
  fingerprint: string;
  /** fit.earlyStopping: its state and the best epoch's weights. */
  earlyStopping?: { state: EarlyStoppingState; best: EncodedTensors };
}

export interface CheckpointStore {
  load(): Promise<TrainCheckpoint | undefined>;
  save(checkpoint: TrainCheckpoint): Promise<void>;
  /** Forget the checkpoint (after the trained model is registered). */
  clear?(): Promise<void>;
}

/** Hidden optimizer fields that getWeights/setWeights do not carry (private in tfjs's typings). */
const EXTRA_FIELDS = ['accBeta1', 'accBeta2'] as const;
type WithExtras = Partial<Record<(typeof EXTRA_FIELDS)[number], tf.Variable>>;

export async function captureState(
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
): Promise<Pick<TrainCheckpoint, 'weights' | 'optimizer' | 'optimizerExtra'>> {
  // Positional names: variable names differ between processes (tfjs suffixes "_1" on reuse).
  const weights = await tf.io.encodeWeights(model.getWeights().map((tensor, i) => ({ name: `w${i}`, tensor })));
  const slots = await optimizer.getWeights();
  let encoded: EncodedTensors;
  try {
    encoded = await tf.io.encodeWeights(slots.map((s, i) => ({ name: `o${i}`, tensor: s.tensor })));
  } finally {
    slots[0]?.tensor.dispose(); // getWeights makes a fresh "iter" scalar first; the rest are the live slots
  }
  const optimizerExtra: Record<string, number> = {};
  for (const field of EXTRA_FIELDS) {
    const v = (optimizer as unknown as WithExtras)[field];
    if (v) optimizerExtra[field] = (await v.data())[0]!;
  }
  return { weights, optimizer: encoded, optimizerExtra };
}

/** Puts a checkpoint's weights into `model` and its slots into a fresh, never-stepped `optimizer`. */
export async function restoreState(model: tf.LayersModel, optimizer: tf.Optimizer, c: TrainCheckpoint): Promise<void> {
  const weights = decodeOrdered(c.weights);
  try {
    model.setWeights(weights);
  } finally {
    tf.dispose(weights);
  }
  const slots = decodeOrdered(c.optimizer);
  try {
    await optimizer.setWeights(slots.map((tensor, i) => ({ name: c.optimizer.specs[i]!.name, tensor })));
  } finally {
    tf.dispose(slots); // setWeights made its own variables sharing the data
  }
  for (const [field, value] of Object.entries(c.optimizerExtra)) {
    const v = (optimizer as unknown as WithExtras)[field as (typeof EXTRA_FIELDS)[number]];
    if (v) tf.tidy(() => v.assign(tf.scalar(value)));
  }
}

function decodeOrdered(e: EncodedTensors): tf.Tensor[] {
  const map = tf.io.decodeWeights(e.data, e.specs);
  return e.specs.map((s) => map[s.name]!);
}

const FILE = 'checkpoint.bin';
const MAGIC = 'TQCK';
type Header = Omit<TrainCheckpoint, 'weights' | 'optimizer' | 'earlyStopping'> & {
  weights: tf.io.WeightsManifestEntry[];
  optimizer: tf.io.WeightsManifestEntry[];
  earlyStopping?: { state: EarlyStoppingState; best: tf.io.WeightsManifestEntry[] };
};

/**
 * A checkpoint kept in the blob store at ArtifactStore.checkpointKey(key, ...) as ONE blocks object
 * (@tq/storage), written atomically: a worker killed mid-write leaves the previous epoch's checkpoint
 * intact, and a retry on any host that shares the store resumes from it. With the
 * job's fence, a save checks the lock right before it becomes visible: a stale attempt (its lock lapsed
 * while it stalled) cannot put its older epoch over the live attempt's checkpoint.
 */
export function storedCheckpoint(store: ArtifactStore, key: string, fence?: JobFence): CheckpointStore {
  const path = { blobs: store.blobs, key: store.checkpointKey(key, FILE) };
  return {
    async load() {
      const file = await readBlocksFile<Header>(path, MAGIC);
      if (!file) return undefined;
      const { weights, optimizer, earlyStopping, ...rest } = file.header;
      return {
        ...rest,
        weights: { specs: weights, data: file.blocks.weights! },
        optimizer: { specs: optimizer, data: file.blocks.optimizer! },
        ...(earlyStopping
          ? {
              earlyStopping: {
                // JSON wrote a NaN best value (nothing measured yet) as null.
                state: { ...earlyStopping.state, bestValue: earlyStopping.state.bestValue ?? Number.NaN },
                best: { specs: earlyStopping.best, data: file.blocks.best! },
              },
            }
          : {}),
      };
    },
    async save(c) {
      const { earlyStopping, ...rest } = c;
      const header: Header = {
        ...rest,
        weights: c.weights.specs,
        optimizer: c.optimizer.specs,
        ...(earlyStopping ? { earlyStopping: { state: earlyStopping.state, best: earlyStopping.best.specs } } : {}),
      };
      const blocks = { weights: c.weights.data, optimizer: c.optimizer.data };
      const all = earlyStopping ? { ...blocks, best: earlyStopping.best.data } : blocks;
      await writeBlocksFile(path, MAGIC, header, all, fence && (() => fence.assertHeld()));
    },
    async clear() {
      await store.blobs.deletePrefix(store.checkpointPrefix(key));
    },
  };
}
