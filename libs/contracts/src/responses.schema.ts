import { z } from 'zod';
import { datasetInfoSchema } from './dataset.schema';
import { predictionSchema } from './infer.schema';
import { tenantSchema } from './auth.schema';
import { jobViewSchema } from './job-state.schema';
import { modelVersionMetaSchema } from './model.schema';
import { modelRefSchema } from './names.schema';

/**
 * What the API answers, so the OpenAPI document (and a client generated from it) types every
 * response from the same contracts as the requests.
 */

/** 202 of POST /v1/jobs/{train,compress,infer}. */
export const jobSubmittedSchema = jobViewSchema.pick({ id: true, type: true, state: true });
export type JobSubmitted = z.infer<typeof jobSubmittedSchema>;

/** GET /v1/jobs: newest first. */
export const jobListSchema = z.object({
  items: z.array(jobViewSchema),
  page: z.number().int(),
  pageSize: z.number().int(),
});
export type JobList = z.infer<typeof jobListSchema>;

/** A version as the API shows it: its metadata and where each artifact downloads from. */
export const modelVersionViewSchema = modelVersionMetaSchema.extend({
  urls: z
    .record(z.string(), z.string())
    .describe('artifact file name → path to GET it (model.json loads with tf.loadLayersModel)'),
});
export type ModelVersionView = z.infer<typeof modelVersionViewSchema>;

/** GET /v1/models/:name */
export const modelDetailSchema = z.object({ name: z.string(), versions: z.array(modelVersionViewSchema) });
export type ModelDetail = z.infer<typeof modelDetailSchema>;

/** GET /v1/models */
export const modelListSchema = z.array(
  z.object({
    name: z.string(),
    latestVersion: z.number().int(),
    /** The tenant whose model this is: names are per tenant (an admin's listing holds every tenant's). */
    tenant: tenantSchema,
  }),
);
export type ModelList = z.infer<typeof modelListSchema>;

/** POST /v1/models/:name/versions/:version/predict */
export const predictResponseSchema = z.object({
  model: modelRefSchema,
  engine: z.enum(['onnxruntime', 'tfjs']),
  predictions: z.array(predictionSchema),
  /** Records: per column, how many values were categories unseen in training (read as "unknown"). */
  unknownCategories: z.record(z.string(), z.number().int()).optional(),
});
export type PredictResponse = z.infer<typeof predictResponseSchema>;

/** GET /v1/datasets: an uploaded one carries its tenant (an admin's listing holds every tenant's). */
export const datasetListSchema = z.array(datasetInfoSchema.extend({ tenant: tenantSchema.optional() }));
export type DatasetList = z.infer<typeof datasetListSchema>;

/** Whether Redis keeps its data across a restart: append-only file, snapshots, both, neither. */
export const redisPersistenceSchema = z.enum(['aof', 'rdb', 'aof+rdb', 'none', 'unknown']);
export type RedisPersistence = z.infer<typeof redisPersistenceSchema>;

/**
 * GET /health: 200 when Redis answers, 503 otherwise. "degraded" as well (with 200) once Redis
 * lost its data since this API started (it restarted empty: the jobs it held are gone);
 * `warnings` say why, and name a Redis that keeps nothing on disk.
 */
export const healthSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  redis: z.object({
    ok: z.boolean(),
    latencyMs: z.number().optional(),
    error: z.string().optional(),
    persistence: redisPersistenceSchema,
    /** When Redis was found to have lost its data (restarted empty), newest first; kept by the API. */
    dataLost: z.array(z.string()).optional(),
  }),
  warnings: z.array(z.string()),
  backend: z.object({
    name: z.string(),
    provider: z.string(),
    gpu: z.boolean(),
    fastKernels: z.array(z.string()),
    skipped: z.array(z.object({ provider: z.string(), reason: z.string() })),
  }),
});
export type Health = z.infer<typeof healthSchema>;

/** Every 4xx and 500 body: a one-line message and, for 4xx, the issues, each naming its field. */
export const errorBodySchema = z.object({
  statusCode: z.number().int(),
  error: z.string().optional(),
  message: z.string(),
  issues: z.array(z.object({ field: z.string(), reason: z.string() })).optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;
