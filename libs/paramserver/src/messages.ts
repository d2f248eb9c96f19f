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
  /** Names the payload's chunk keys; absent when there is no payload (samples = 0, done, gone). */
  token: z.string().regex(/^[A-Za-z0-9_.-]{1,80}$/).optional(),
  floats: z.number().int().min(0).default(0),
  /** Rows behind the payload: gradients and weights are averaged weighted by this. */
  samples: z.number().int().min(0).default(0),
  /** Mean loss over those rows, measured before the update (training mode). */
  loss: z.number().default(0),
  /** Rows of those the model classified right (training mode): the epoch accuracy trainModel reports. */
  correct: z.number().int().min(0).default(0),
  /** Wall time of the shard's step (pull + compute + push), for the slowest-worker report. */
  ms: z.number().min(0).default(0),
});
export type ShardMessage = z.infer<typeof shardMessageSchema>;
export type ShardMessageInput = z.input<typeof shardMessageSchema>;
