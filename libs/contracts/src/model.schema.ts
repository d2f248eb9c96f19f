import { z } from 'zod';
import { layerSchema } from './layers.schema';
import { metricsSchema } from './train.schema';

/** Where a version came from: the registry's lineage graph is made of these edges. */
export const lineageSchema = z.object({
  kind: z.enum(['trained', 'fine-tuned', 'compressed', 'distilled']),
  jobId: z.string().optional(),
  dataset: z.object({ builtin: z.string().optional(), id: z.string().optional() }).optional(),
  parent: z.object({ name: z.string(), version: z.number().int() }).optional(),
  compression: z.record(z.string(), z.unknown()).optional(),
});
export type Lineage = z.infer<typeof lineageSchema>;

/** metadata.json beside model.json: everything the registry knows, rebuildable from the folder alone. */
export const modelVersionMetaSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  createdAt: z.string(),
  inputShape: z.array(z.number().int()),
  featureCount: z.number().int(),
  classes: z.array(z.string()),
  layers: z.array(layerSchema).optional(),
  metrics: metricsSchema.partial().optional(),
  history: z.array(z.record(z.string(), z.number())).optional(),
  lineage: lineageSchema,
  backend: z.string().optional(),
  weightDtype: z.string().default('float32'),
  /** Bytes on disk of each artifact, filled in by the registry. */
  artifacts: z.record(z.string(), z.number().int()).default({}),
});
export type ModelVersionMeta = z.infer<typeof modelVersionMetaSchema>;
