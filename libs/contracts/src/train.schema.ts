import { z } from 'zod';
import { datasetRefSchema } from './dataset.schema';
import { layersSchema } from './layers.schema';
import { modelNameSchema, modelRefSchema } from './names.schema';
import { columnOverridesSchema, taskSchema } from './table.schema';

/** What early stopping may watch: a validation metric (or the training loss without a validation split). */
export const MONITORED_METRICS = ['valLoss', 'valAccuracy', 'valMae', 'valRmse', 'valR2', 'loss'] as const;

/** Stop when `monitor` has not improved by more than `minDelta` for `patience` epochs; the best epoch's weights are kept. */
export const earlyStoppingSchema = z
  .object({
    monitor: z.enum(MONITORED_METRICS).default('valLoss'),
    patience: z.number().int().min(1).max(1000).default(5),
    minDelta: z.number().min(0).default(0),
  })
  .strict();
export type EarlyStoppingSpec = z.infer<typeof earlyStoppingSchema>;

/**
 * Magnitude pruning while training: the `sparsity` share of the dense and conv2d kernel weights with
 * the smallest |w| (ranked within each layer, or across all: `scope`) held at zero through every
 * optimizer step, in one process and in data-parallel runs (the parameter server re-applies the
 * masks after each update). `oneShot`: the masks at the target from the first step (fine-tuning a
 * pruned version with `model.from` keeps its zeros); `polynomial`: the sparsity rises from 0 to the
 * target over the first 75% of the steps (Zhu & Gupta's cubic schedule), the rest trains at it.
 */
export const trainPruneSchema = z
  .object({
    sparsity: z.number().min(0).lt(1),
    scope: z.enum(['layer', 'global']).default('layer'),
    schedule: z.enum(['oneShot', 'polynomial']).default('oneShot'),
  })
  .strict();
export type TrainPruneSpec = z.infer<typeof trainPruneSchema>;

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
    /**
     * Classification: cross-entropy only (the default). Regression: `mse` (default), `mae` or
     * `huber` (delta 1, on the standardized target).
     */
    loss: z.enum(['crossentropy', 'mse', 'mae', 'huber']).optional(),
    earlyStopping: earlyStoppingSchema.optional(),
    /** Classification: weight each class by rows / (classes × rows of the class) in the training split. */
    classWeights: z.literal('balanced').optional(),
    prune: trainPruneSchema.optional(),
  })
  .strict()
  .refine((f) => !(f.earlyStopping && f.prune?.schedule === 'polynomial'), {
    // Its best epoch may come before the sparsity reached the target.
    message: 'not with a polynomial prune schedule (the best epoch may be less sparse than asked)',
    path: ['earlyStopping'],
  });
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
    /** Uploaded tables: classification or regression (inferred from the label column when absent). */
    task: taskSchema.optional(),
    /** Uploaded tables: per column a kind to force or "ignore", on top of the upload's overrides. */
    columns: columnOverridesSchema.optional(),
    /** Uploaded tables: how missing numbers are filled (statistic of the training split). */
    impute: z.enum(['mean', 'median']).default('mean'),
  })
  .strict();
export type TrainRequest = z.infer<typeof trainRequestSchema>;
/** The job payload is the validated request: defaults filled in, so a worker never guesses. */
export type TrainJobData = TrainRequest;

/** Classification reports accuracy, regression mae / rmse / r2 (in the target's units); val* on the validation split. */
export const metricsSchema = z.object({
  loss: z.number(),
  accuracy: z.number().optional(),
  valLoss: z.number().optional(),
  valAccuracy: z.number().optional(),
  mae: z.number().optional(),
  rmse: z.number().optional(),
  r2: z.number().optional(),
  valMae: z.number().optional(),
  valRmse: z.number().optional(),
  valR2: z.number().optional(),
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
  task: taskSchema.default('classification'),
  /** Early stopping: the epoch whose weights were kept, and the epoch training stopped after. */
  bestEpoch: z.number().int().optional(),
  stoppedEpoch: z.number().int().optional(),
  /** Uploaded tables: the preprocessed width and the columns left out, with the reason. */
  preprocessing: z
    .object({ width: z.number().int(), ignored: z.array(z.object({ name: z.string(), reason: z.string() })) })
    .optional(),
  distributed: z
    .object({ workers: z.number(), mode: z.string(), steps: z.number(), droppedStale: z.number() })
    .optional(),
});
export type TrainResult = z.infer<typeof trainResultSchema>;
