import { z } from 'zod';
import { metricsSchema, trainRequestSchema } from './train.schema';

/**
 * A data-parallel run: the train job (the coordinator) spawns one aggregator job and N shard jobs,
 * all carrying the run id. The parameter-server lib owns the wire format between them (Redis keys).
 *
 * Batch semantics: `fit.batchSize` is the batch of ONE worker (b); a sync step averages the
 * gradients of N workers, i.e. trains on a global batch of N x b rows, exactly as single-process
 * training with batchSize N x b would (same data order, same weights within float tolerance).
 */
export const aggregateJobDataSchema = z.object({
  runId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/),
  parentJobId: z.string().min(1),
  request: trainRequestSchema,
});
export type AggregateJobData = z.infer<typeof aggregateJobDataSchema>;

export const trainShardJobDataSchema = z.object({
  runId: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/),
  /**
   * 0-based. At every global step the shard trains on the shardIndex-th of `shards` contiguous,
   * near-equal parts of that step's global batch (after the seeded per-epoch shuffle): disjoint
   * shares that together use every training row once per epoch.
   */
  shardIndex: z.number().int().min(0),
  shards: z.number().int().min(1),
  request: trainRequestSchema,
});
export type TrainShardJobData = z.infer<typeof trainShardJobDataSchema>;

/** Per worker: rows it contributed to applied updates, its recent step time (pull + compute + push), its payloads dropped as stale. */
export const workerShareSchema = z.object({
  samples: z.number(),
  stepMs: z.number(),
  dropped: z.number().int().optional(),
});

export const aggregateResultSchema = z.object({
  /** Global steps (sync/local) or applied gradients (async). */
  steps: z.number().int(),
  droppedStale: z.number().int(),
  weightsVersion: z.number().int(),
  status: z.enum(['done', 'aborted']).default('done'),
  metrics: metricsSchema.optional(),
  history: z.array(z.record(z.string(), z.number())).default([]),
  /** Rows behind the applied updates, and per second of training wall time (all restarts together). */
  samples: z.number().int().default(0),
  samplesPerSec: z.number().default(0),
  /** Times this aggregator job started over from a checkpoint (or from scratch when it had none). */
  restarts: z.number().int().default(0),
  resumedFromStep: z.number().int().optional(),
  /** sync/local: steps that closed on the step timeout (a shard lost); a lost shard costs one, not one per step. */
  timedOutSteps: z.number().int().default(0),
  workers: z.record(z.string(), workerShareSchema).default({}),
  slowestWorker: z.string().optional(),
  /** fit.earlyStopping: the epoch whose weights the run ends with, and the last epoch trained. */
  bestEpoch: z.number().int().optional(),
  stoppedEpoch: z.number().int().optional(),
  backend: z.string().optional(),
});
export type AggregateResult = z.infer<typeof aggregateResultSchema>;
export const trainShardResultSchema = z.object({ steps: z.number().int(), samples: z.number().int() });
export type TrainShardResult = z.infer<typeof trainShardResultSchema>;
/** Aggregator and shard progress; the aggregator's carries the TrainProgress fields the coordinator forwards. */
export const distributedProgressSchema = z
  .object({
    step: z.number().int(),
    percent: z.number(),
    totalSteps: z.number().int().optional(),
    epoch: z.number().int().optional(),
    epochs: z.number().int().optional(),
    loss: z.number().optional(),
    samplesPerSec: z.number().optional(),
    droppedStale: z.number().int().optional(),
    version: z.number().int().optional(),
    workers: z.record(z.string(), workerShareSchema).optional(),
    slowestWorker: z.string().optional(),
  })
  .passthrough();
export type DistributedProgress = z.infer<typeof distributedProgressSchema>;
