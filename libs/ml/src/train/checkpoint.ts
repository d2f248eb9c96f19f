import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ArtifactStore, writeFileAtomic } from '@tq/storage';

/** Tensors in tfjs's binary weight format (io.encodeWeights), in a fixed order. */
export interface EncodedTensors { specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer }

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

export async function captureState(model: tf.LayersModel, optimizer: tf.Optimizer): Promise<Pick<TrainCheckpoint, 'weights' | 'optimizer' | 'optimizerExtra'>> {
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
const MAGIC = 0x4b435154; // "TQCK" little-endian

/**
 * A checkpoint kept in ArtifactStore.checkpointDir(key) as ONE binary file, written atomically
 * (write + rename): [magic u32][header length u32][header JSON][model weights][optimizer weights].
 * A worker killed mid-write leaves the previous epoch's checkpoint intact.
 */
export function fileCheckpoint(store: ArtifactStore, key: string): CheckpointStore {
  const dir = store.checkpointDir(key);
  const path = join(dir, FILE);
  return {
    async load() {
      let buf: Buffer;
      try {
        buf = await readFile(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      if (buf.length < 8 || buf.readUInt32LE(0) !== MAGIC) throw new Error(`${path} is not a TensorQueue checkpoint`);
      const headerLength = buf.readUInt32LE(4);
      const header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as Omit<TrainCheckpoint, 'weights' | 'optimizer'> & {
        weights: { specs: tf.io.WeightsManifestEntry[]; bytes: number };
        optimizer: { specs: tf.io.WeightsManifestEntry[]; bytes: number };
      };
      const start = 8 + headerLength;
      const copy = (from: number, bytes: number): ArrayBuffer => buf.buffer.slice(buf.byteOffset + from, buf.byteOffset + from + bytes) as ArrayBuffer;
      return {
        ...header,
        weights: { specs: header.weights.specs, data: copy(start, header.weights.bytes) },
        optimizer: { specs: header.optimizer.specs, data: copy(start + header.weights.bytes, header.optimizer.bytes) },
      };
    },
    async save(c) {
      const header = Buffer.from(JSON.stringify({
        ...c,
        weights: { specs: c.weights.specs, bytes: c.weights.data.byteLength },
        optimizer: { specs: c.optimizer.specs, bytes: c.optimizer.data.byteLength },
      }), 'utf8');
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32LE(MAGIC, 0);
      prefix.writeUInt32LE(header.length, 4);
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(path, Buffer.concat([prefix, header, Buffer.from(c.weights.data), Buffer.from(c.optimizer.data)]));
    },
    async clear() {
      await rm(dir, { recursive: true, force: true });
    },
  };
}
