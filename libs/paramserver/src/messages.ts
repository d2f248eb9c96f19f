import { z } from 'zod';

/**
 * The small control messages of the protocol. They are JSON (a few dozen bytes); the tensors they
 * announce never are: those travel as raw Float32 chunks under `payload` keys (chunked-blob.ts).
 */
export const runStatusSchema = z.enum(['running', 'done', 'aborted']);
export type RunStatus = z.infer<typeof runStatusSchema>;

/** What the aggregator publishes: weights `version` are out; sync/local shards compute global step `step` on them. */
export const publishedStateSchema = z.object({
  version: z.number().int().min(0),
  step: z.number().int().min(0),
  status: runStatusSchema,
  /** Floats in the published weights (layout check on the shard side). */
  floats: z.number().int().min(0),
});
export type PublishedState = z.infer<typeof publishedStateSchema>;

/**
 * Shard → aggregator. grad: a gradient computed on weights `version` (sync, async); weights: local
 * weights after local steps started from `version` (local); done: an async shard finished its
 * share; gone: the coordinator saw the shard's job fail for good (no retry will come back).
 */
export const shardMessageSchema = z.object({
  kind: z.enum(['grad', 'weights', 'done', 'gone']),
  shard: z.number().int().min(0),
  version: z.number().int().min(0).default(0),
  /** sync/local: the global step the payload is for; async: the shard's local step index. */
  step: z.number().int().min(0).default(0),
  /** Names the payload's chunk keys, for a payload larger than one chunk. */
  token: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,80}$/)
    .optional(),
  /** The payload (raw Float32 bytes) follows the JSON header in the same inbox element. */
  inline: z.boolean().default(false),
  floats: z.number().int().min(0).default(0),
  /** Rows behind the payload: gradients and weights are averaged weighted by this. */
  samples: z.number().int().min(0).default(0),
  /** Mean loss over those rows, measured before the update (training mode). */
  loss: z.number().default(0),
  /** Rows of those the model classified right (training mode): the epoch accuracy trainModel reports. */
  correct: z.number().int().min(0).default(0),
  /** Regression: sums of |error| and error² over those rows (standardized target), for mae/rmse/r2. */
  absErr: z.number().min(0).default(0),
  sqErr: z.number().min(0).default(0),
  /** Wall time of the shard's step (pull + compute + push), for the slowest-worker report. */
  ms: z.number().min(0).default(0),
});
export type ShardMessage = z.infer<typeof shardMessageSchema>;
export type ShardMessageInput = z.input<typeof shardMessageSchema>;

/** A message as the aggregator receives it: its inline payload bytes, if any, ride along. */
export type ReceivedMessage = ShardMessage & { inlineBytes?: Buffer };

/**
 * An inbox element: uint32 LE length of the JSON header, the header, then (inline payloads only)
 * the raw Float32 bytes. Binary framing: a payload up to one chunk travels in the very element
 * that announces it, so the aggregator's BLPOP hands it over without a second round trip.
 */
export function frameMessage(msg: ShardMessage, payload?: Float32Array): Buffer {
  let text = JSON.stringify(msg);
  // Trailing spaces (JSON.parse ignores them) put the payload at a multiple of 4 bytes into the
  // frame, so the aggregator can read it in place as a Float32Array instead of copying it first.
  text += ' '.repeat((4 - ((4 + Buffer.byteLength(text, 'utf8')) % 4)) % 4);
  const json = Buffer.from(text, 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  return payload
    ? Buffer.concat([head, json, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)])
    : Buffer.concat([head, json]);
}

export function unframeMessage(frame: Buffer): ReceivedMessage {
  const len = frame.readUInt32LE(0);
  const msg = shardMessageSchema.parse(JSON.parse(frame.toString('utf8', 4, 4 + len)));
  if (!msg.inline) return msg;
  const bytes = frame.subarray(4 + len);
  if (bytes.length !== msg.floats * 4)
    throw new Error(`inline payload of ${bytes.length} bytes, announced ${msg.floats} floats`);
  return { ...msg, inlineBytes: bytes };
}
