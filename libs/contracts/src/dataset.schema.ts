import { z } from 'zod';
import { datasetIdSchema } from './names.schema';
import { prototypeKeyIn } from './prototype-keys';
import { columnOverridesSchema, tableProfileSchema, taskSchema } from './table.schema';

export const BUILTIN_DATASETS = ['mnist', 'iris'] as const;
export const datasetRefSchema = z.union([
  z.object({ builtin: z.enum(BUILTIN_DATASETS) }).strict(),
  z.object({ id: datasetIdSchema }).strict(),
]);
export type DatasetRef = z.infer<typeof datasetRefSchema>;

/** A JSON object sent as one multipart text field. */
const jsonField = <T extends z.ZodTypeAny>(schema: T) =>
  z
    .string()
    .max(1 << 20)
    .transform((text, ctx): unknown => {
      let value: unknown;
      try {
        value = JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'is not valid JSON' });
        return z.NEVER;
      }
      const key = prototypeKeyIn(value);
      if (key === undefined) return value;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `the key "${key}" is not allowed` });
      return z.NEVER;
    })
    .pipe(schema);

/**
 * Form fields that accompany a multipart upload (POST /v1/datasets). The file is stored as it
 * came and profiled by a worker; these decide how its columns are read.
 */
export const datasetUploadFieldsSchema = z
  .object({
    name: z.string().min(1).max(128).optional(),
    /** The column to learn; absent for a table that is only predicted on (infer input). */
    labelColumn: z.string().min(1).max(256).optional(),
    /** Comma-separated: the columns to use as features; every other column but the label is ignored. */
    featureColumns: z.string().min(1).max(65536).optional(),
    /** JSON: per column a kind to force or "ignore", e.g. {"Name": "ignore", "Cylinders": "categorical"}. */
    columns: jsonField(columnOverridesSchema).optional(),
    /** Classification or regression; inferred from the label column when absent. */
    task: taskSchema.optional(),
  })
  .strict();
export type DatasetUploadFields = z.infer<typeof datasetUploadFieldsSchema>;

export const DATASET_STATUSES = ['profiling', 'ready', 'failed'] as const;
export const datasetStatusSchema = z.enum(DATASET_STATUSES);
export type DatasetStatus = z.infer<typeof datasetStatusSchema>;

/**
 * What the registry knows of a dataset. Uploaded tables (csv / jsonl) carry a profile once a
 * worker has read them; built-in ones are matrices already (features float32, labels class indices).
 */
export const datasetInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  format: z.enum(['csv', 'jsonl', 'builtin']),
  /** profiling → ready, or failed with `error` (the 4xx the file earned: its field names row and column). */
  status: datasetStatusSchema,
  /** 0 until profiled. */
  rows: z.number().int(),
  /** Columns used as features (after overrides and drops); for tables the profile says why each other one is not. */
  featureColumns: z.array(z.string()),
  labelColumn: z.string().nullable(),
  /** Classification labels, in output order; empty for regression and unlabelled tables. */
  classes: z.array(z.string()),
  task: taskSchema.optional(),
  /** Overrides given at upload. */
  columns: columnOverridesSchema.optional(),
  profile: tableProfileSchema.optional(),
  error: z.object({ field: z.string(), message: z.string(), status: z.number().int() }).optional(),
  /** The profiling job (GET /v1/jobs/:id shows its progress). */
  jobId: z.string().optional(),
  createdAt: z.string(),
  /** Size of the uploaded file. */
  bytes: z.number().int(),
});
export type DatasetInfo = z.infer<typeof datasetInfoSchema>;

/** Shapes of the built-in datasets, known without loading them (the API checks requests against these). */
export const BUILTIN_DATASET_SHAPES: Readonly<
  Record<(typeof BUILTIN_DATASETS)[number], { featureCount: number; classCount: number; rows: number }>
> = {
  mnist: { featureCount: 784, classCount: 10, rows: 10_000 },
  iris: { featureCount: 4, classCount: 3, rows: 150 },
};

/** The job a worker runs on an uploaded table: read it once (csv-parse / JSON lines), profile it, mark it ready. */
export const profileDatasetJobDataSchema = z
  .object({
    datasetId: datasetIdSchema,
    format: z.enum(['csv', 'jsonl']),
    labelColumn: z.string().min(1).max(256).optional(),
    featureColumns: z.array(z.string()).optional(),
    columns: columnOverridesSchema.optional(),
    task: taskSchema.optional(),
  })
  .strict();
export type ProfileDatasetJobData = z.infer<typeof profileDatasetJobDataSchema>;

export const profileDatasetProgressSchema = z.object({
  stage: z.literal('reading'),
  percent: z.number().min(0).max(100),
  rows: z.number().int().optional(),
});
export type ProfileDatasetProgress = z.infer<typeof profileDatasetProgressSchema>;

export const profileDatasetResultSchema = z.object({ datasetId: z.string(), rows: z.number().int() });
export type ProfileDatasetResult = z.infer<typeof profileDatasetResultSchema>;
