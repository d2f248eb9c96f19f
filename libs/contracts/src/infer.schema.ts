import { z } from 'zod';
import { datasetIdSchema, modelRefSchema } from './names.schema';

/** Rows of finite numbers; NaN and Infinity cannot be expressed in JSON, strings are rejected. */
export const instancesSchema = z.array(z.array(z.number().finite()).min(1).max(1_000_000)).min(1).max(100_000);

const datasetInputSchema = z.object({ dataset: z.object({ id: datasetIdSchema }).strict() }).strict();

export const inferRequestSchema = z
  .object({
    model: modelRefSchema,
    input: z.union([datasetInputSchema, z.object({ instances: instancesSchema }).strict()]),
    batchSize: z.number().int().min(1).max(65536).default(1024),
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
  rows: z.number().int().optional(),
});
export type InferProgress = z.infer<typeof inferProgressSchema>;

export const inferResultSchema = z.object({
  rows: z.number().int(),
  rowsPerSec: z.number(),
  engine: z.enum(['onnxruntime', 'tfjs']),
  backend: z.string(),
  /** GET /v1/jobs/:id/output: JSONL, one line per input row in input order. */
  output: z.string(),
});
export type InferResult = z.infer<typeof inferResultSchema>;

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
