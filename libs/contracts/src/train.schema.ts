import { z } from 'zod';
import { datasetRefSchema } from './dataset.schema';
import { layersSchema } from './layers.schema';
import { modelNameSchema, modelRefSchema } from './names.schema';

export const fitSchema = z
  .object({
    epochs: z.number().int().min(1).max(1000).default(5),
    batchSize: z.number().int().min(1).max(65536).default(128),
    optimizer: z.enum(['sgd', 'momentum', 'adam', 'rmsprop', 'adagrad']).default('adam'),
    learningRate: z.number().positive().max(10).default(0.001),
    validationSplit: z.number().min(0).lt(1).default(0.1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(1),
    shuffle: z.boolean().default(true),
  })
  .strict();
export type FitSpec = z.infer<typeof fitSchema>;

export const distributedSchema = z
  .object({
    workers: z.number().int().min(1).max(64),
    mode: z.enum(['sync', 'async', 'local']).default('sync'),
    /** async: a gradient computed on weights older than this many versions is dropped. */
    staleness: z.number().int().min(0).max(1000).default(4),
    /** local: local steps between weight averages. */
    syncEvery: z.number().int().min(1).max(10000).default(8),
    /** sync: how long a step waits for stragglers before closing with the gradients it has. */
    stepTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
    /** sync: the fewest gradients a step may close with after its timeout. */
    quorum: z.number().int().min(1).max(64).default(1),
    /** Steps between aggregator checkpoints. */
    checkpointEvery: z.number().int().min(1).max(100000).default(50),
  })
  .strict()
  .refine((d) => d.quorum <= d.workers, { message: 'must not exceed workers', path: ['quorum'] });
export type DistributedSpec = z.infer<typeof distributedSchema>;

export const trainModelSchema = z
  .object({
    name: modelNameSchema,
    layers: layersSchema.optional(),
    /** Fine-tune an existing version instead of building from layers. */
    from: modelRefSchema.optional(),
  })
  .strict()
  .refine((m) => (m.layers === undefined) !== (m.from === undefined), {
    message: 'give exactly one of "layers" or "from"',
    path: ['layers'],
  });

export const trainRequestSchema = z
  .object({
    model: trainModelSchema,
    dataset: datasetRefSchema,
    fit: fitSchema.default(fitSchema.parse({})),
    distributed: distributedSchema.optional(),
  })
  .strict();
export type TrainRequest = z.infer<typeof trainRequestSchema>;
/** The job payload is the validated request: defaults filled in, so a worker never guesses. */
export type TrainJobData = TrainRequest;

export const metricsSchema = z.object({
  loss: z.number(),
  accuracy: z.number().optional(),
  valLoss: z.number().optional(),
  valAccuracy: z.number().optional(),
});
export type Metrics = z.infer<typeof metricsSchema>;

export const trainProgressSchema = z.object({
  stage: z.enum(['loading', 'training', 'saving']),
  percent: z.number().min(0).max(100),
  epoch: z.number().int().optional(),
  epochs: z.number().int().optional(),
  step: z.number().int().optional(),
  loss: z.number().optional(),
  samplesPerSec: z.number().optional(),
  /** Distributed runs: samples each worker contributed, and who is slowest. */
  workers: z.record(z.string(), z.object({ samples: z.number(), stepMs: z.number() })).optional(),
  slowestWorker: z.string().optional(),
  /**
   * Distributed runs: shards whose jobs no worker has taken (too few train-shard slots). Until
   * they start, steps go on without their rows; a run of N workers needs N train-shard slots.
   */
  waitingForWorkers: z.number().int().min(1).optional(),
});
export type TrainProgress = z.infer<typeof trainProgressSchema>;

export const trainResultSchema = z.object({
  model: modelRefSchema,
  metrics: metricsSchema,
  epochs: z.number().int(),
  samplesPerSec: z.number(),
  backend: z.string(),
  resumedFromEpoch: z.number().int().optional(),
  distributed: z
    .object({ workers: z.number(), mode: z.string(), steps: z.number(), droppedStale: z.number() })
    .optional(),
});
export type TrainResult = z.infer<typeof trainResultSchema>;
