import { z } from 'zod';
import { trainRequestSchema } from './train.schema';

/**
 * A data-parallel run: the train job (the coordinator) spawns one aggregator job and N shard jobs,
 * all carrying the run id. The parameter-server lib owns the wire format between them (Redis keys).
 */
export const aggregateJobDataSchema = z.object({
  runId: z.string().min(1),
  parentJobId: z.string().min(1),
  request: trainRequestSchema,
});
export type AggregateJobData = z.infer<typeof aggregateJobDataSchema>;

export const trainShardJobDataSchema = z.object({
  runId: z.string().min(1),
  /** 0-based; the shard reads samples i where i % shards === shardIndex (after the seeded shuffle). */
  shardIndex: z.number().int().min(0),
  shards: z.number().int().min(1),
  request: trainRequestSchema,
});
export type TrainShardJobData = z.infer<typeof trainShardJobDataSchema>;

export const aggregateResultSchema = z.object({ steps: z.number().int(), droppedStale: z.number().int(), weightsVersion: z.number().int() });
export type AggregateResult = z.infer<typeof aggregateResultSchema>;
export const trainShardResultSchema = z.object({ steps: z.number().int(), samples: z.number().int() });
export type TrainShardResult = z.infer<typeof trainShardResultSchema>;
export const distributedProgressSchema = z.object({ step: z.number().int(), percent: z.number() }).passthrough();
export type DistributedProgress = z.infer<typeof distributedProgressSchema>;
