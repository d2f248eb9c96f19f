import { z } from 'zod';
import { datasetIdSchema, modelRefSchema } from './names.schema';

/** Rows in one request's `instances` (or binary rows, tensor-body.ts) at most. */
export const MAX_INSTANCE_ROWS = 100_000;
/** Values in one row of `instances` at most. */
export const MAX_ROW_VALUES = 1_000_000;

/** Rows of finite numbers; NaN and Infinity cannot be expressed in JSON, strings are rejected. */
export const instancesSchema = z
  .array(z.array(z.number().finite()).min(1).max(MAX_ROW_VALUES))
  .min(1)
  .max(MAX_INSTANCE_ROWS);

const datasetInputSchema = z.object({ dataset: z.object({ id: datasetIdSchema }).strict() }).strict();

export const inferRequestSchema = z
  .object({
    model: modelRefSchema,
    input: z.union([datasetInputSchema, z.object({ instances: instancesSchema }).strict()]),
    batchSize: z.number().int().min(1).max(65536).default(1024),
    /**
     * Error budget: rows of a table that may fail (a cell that cannot be read) before the job fails.
     * Each failed row is listed in GET /v1/jobs/:id/errors. Default: INFER_MAX_ERRORS.
     */
    maxErrors: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();
export type InferRequest = z.infer<typeof inferRequestSchema>;

/** Inline rows the API stored as the job's input artifact (float32, keyed by the job id). */
const storedInputSchema = z
  .object({ stored: z.object({ rows: z.number().int().min(1), features: z.number().int().min(1) }).strict() })
  .strict();

/**
 * What an infer job carries: the request with its inline instances replaced by a reference to the
 * stored rows, so that they do not sit in Redis with the job. Defaults are filled in already.
 */
export const inferJobDataSchema = inferRequestSchema.extend({
  input: z.union([datasetInputSchema, storedInputSchema]),
  batchSize: z.number().int().min(1).max(65536),
});
export type InferJobData = z.infer<typeof inferJobDataSchema>;

export const inferProgressSchema = z.object({
  stage: z.enum(['loading', 'predicting', 'writing']),
  percent: z.number(),
  /** Rows predicted so far, over every shard. */
  rows: z.number().int().optional(),
  /** A table's job: its shards, and how many have committed their part. */
  shards: z.object({ done: z.number().int(), total: z.number().int() }).optional(),
  /** Rows that failed so far (listed in GET /v1/jobs/:id/errors once the job ends). */
  errors: z.number().int().optional(),
});
export type InferProgress = z.infer<typeof inferProgressSchema>;

export const inferResultSchema = z.object({
  rows: z.number().int(),
  rowsPerSec: z.number(),
  engine: z.enum(['onnxruntime', 'tfjs']),
  backend: z.string(),
  /** GET /v1/jobs/:id/output: JSONL, one line per input row in input order. */
  output: z.string(),
  /** Rows that failed (a line {"error": ...} in the output each); a table's job only. */
  errors: z.number().int().optional(),
  /** GET /v1/jobs/:id/errors: one line per failed row; present when some failed. */
  errorsOutput: z.string().optional(),
  /** Shards the table was split into (child jobs), and the rows computed more than once (a shard run again). */
  shards: z.number().int().optional(),
  recomputed: z.object({ shards: z.number().int(), rows: z.number().int() }).optional(),
});
export type InferResult = z.infer<typeof inferResultSchema>;

/** One failed row: GET /v1/jobs/:id/errors has one per line, in row order (rows count from 1, the header aside). */
export const rowErrorSchema = z.object({
  row: z.number().int().min(1),
  column: z.string().optional(),
  message: z.string(),
});
export type RowError = z.infer<typeof rowErrorSchema>;

/**
 * One shard of a table's infer job: rows [firstRow, firstRow + rows) of dataset `dataset`, read
 * from `range` of its bytes (a CSV's header bytes [0, headerEnd) are read before it; JSON Lines:
 * headerEnd 0, the columns come from the row index). No range: the whole file (a table without a
 * row index is one shard).
 */
export const inferShardJobDataSchema = z
  .object({
    parentJobId: z.string().min(1),
    shard: z.number().int().min(0),
    shards: z.number().int().min(1),
    model: modelRefSchema,
    dataset: datasetIdSchema,
    firstRow: z.number().int().min(1),
    rows: z.number().int().min(0),
    range: z
      .object({ start: z.number().int().min(0), end: z.number().int().min(0).optional() })
      .strict()
      .optional(),
    headerEnd: z.number().int().min(0).optional(),
    batchSize: z.number().int().min(1).max(65536),
    maxErrors: z.number().int().min(0),
  })
  .strict();
export type InferShardJobData = z.infer<typeof inferShardJobDataSchema>;

export const inferShardProgressSchema = z.object({
  percent: z.number(),
  rows: z.number().int(),
  errors: z.number().int(),
});
export type InferShardProgress = z.infer<typeof inferShardProgressSchema>;

export const inferShardResultSchema = z.object({
  rows: z.number().int(),
  errors: z.number().int(),
  /** The first few failed rows (the parent names them when the budget is exceeded). */
  firstErrors: z.array(rowErrorSchema),
  engine: z.enum(['onnxruntime', 'tfjs']),
  /** The part was already committed (by an earlier attempt): nothing was computed. */
  reused: z.boolean(),
});
export type InferShardResult = z.infer<typeof inferShardResultSchema>;

/** One raw row by column name, as in the uploaded table: missing cells as null (or absent, for optional columns). */
export const recordSchema = z.record(
  z.string().max(256),
  z.union([z.string().max(65536), z.number(), z.boolean(), z.null()]),
);
export type TableRecord = z.infer<typeof recordSchema>;
export const recordsSchema = z.array(recordSchema).min(1).max(100_000);

/** Numeric rows (already preprocessed), or records by column name for models trained on uploaded tables. */
export const predictRequestSchema = z.union([
  z.object({ instances: instancesSchema }).strict(),
  z.object({ records: recordsSchema }).strict(),
]);
export type PredictRequest = z.infer<typeof predictRequestSchema>;
/**
 * One prediction. Classification: class probabilities, the top class index, and its name when the
 * model has classes. Regression: `value` in the target's units.
 */
export const classPredictionSchema = z.object({
  scores: z.array(z.number()),
  classIndex: z.number().int(),
  label: z.string().optional(),
});
export type ClassPrediction = z.infer<typeof classPredictionSchema>;
export const valuePredictionSchema = z.object({ value: z.number() });
export type ValuePrediction = z.infer<typeof valuePredictionSchema>;
export const predictionSchema = z.union([classPredictionSchema, valuePredictionSchema]);
export type Prediction = z.infer<typeof predictionSchema>;
