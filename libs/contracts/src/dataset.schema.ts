import { z } from 'zod';
import { datasetIdSchema } from './names.schema';

export const BUILTIN_DATASETS = ['mnist', 'iris'] as const;
export const datasetRefSchema = z.union([
  z.object({ builtin: z.enum(BUILTIN_DATASETS) }).strict(),
  z.object({ id: datasetIdSchema }).strict(),
]);
export type DatasetRef = z.infer<typeof datasetRefSchema>;

/** Form fields that accompany a multipart upload (POST /v1/datasets). */
export const datasetUploadFieldsSchema = z.object({
  name: z.string().min(1).max(128).optional(),
  labelColumn: z.string().min(1).max(256),
  /** Comma-separated; all columns but the label when absent. */
  featureColumns: z.string().min(1).max(65536).optional(),
});
export type DatasetUploadFields = z.infer<typeof datasetUploadFieldsSchema>;

/** What the registry knows of an uploaded or built-in dataset (features are float32, labels class indices). */
export const datasetInfoSchema = z.object({
  id: z.string(),
  name: z.string(),
  format: z.enum(['csv', 'jsonl', 'builtin']),
  rows: z.number().int(),
  featureColumns: z.array(z.string()),
  labelColumn: z.string().nullable(),
  classes: z.array(z.string()),
  createdAt: z.string(),
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
