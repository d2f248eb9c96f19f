import { z } from 'zod';
import { compressEvaluationSchema } from './evaluation.schema';
import { layerSchema } from './layers.schema';
import { columnOverridesSchema, taskSchema } from './table.schema';
import { metricsSchema } from './train.schema';

/** Where a version came from: the registry's lineage graph is made of these edges. */
export const lineageSchema = z.object({
  kind: z.enum(['trained', 'fine-tuned', 'compressed', 'distilled']),
  jobId: z.string().optional(),
  dataset: z.object({ builtin: z.string().optional(), id: z.string().optional() }).optional(),
  parent: z.object({ name: z.string(), version: z.number().int() }).optional(),
  compression: z.record(z.string(), z.unknown()).optional(),
  /**
   * How the training rows were split (train's fit.validationSplit and seed, and a table's task,
   * column overrides and imputation): compression evaluates on the same held-out rows. Copied to
   * every version derived from this one without new training data.
   */
  training: z
    .object({
      validationSplit: z.number(),
      seed: z.number().int(),
      task: taskSchema.optional(),
      columns: columnOverridesSchema.optional(),
      impute: z.enum(['mean', 'median']).optional(),
    })
    .optional(),
});
export type Lineage = z.infer<typeof lineageSchema>;

/** metadata.json beside model.json: everything the registry knows, rebuildable from the folder alone. */
export const modelVersionMetaSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  createdAt: z.string(),
  inputShape: z.array(z.number().int()),
  featureCount: z.number().int(),
  /** Classification labels in output order; empty for regression. */
  classes: z.array(z.string()),
  task: taskSchema.default('classification'),
  /**
   * Trained on an uploaded table: the raw columns a record holds (preprocessing.json beside the
   * model says how each becomes features); predict takes `records` by these names.
   */
  inputColumns: z.array(z.string()).optional(),
  layers: z.array(layerSchema).optional(),
  /**
   * The training rows' mean of each feature (the network's input, after a table's preprocessing):
   * the default baseline of explanations. Absent on versions trained before it was recorded.
   */
  featureMeans: z.array(z.number()).optional(),
  metrics: metricsSchema.partial().optional(),
  history: z.array(z.record(z.string(), z.number())).optional(),
  /** A compressed version: source and result measured side by side on the source's held-out rows. */
  evaluation: compressEvaluationSchema.optional(),
  lineage: lineageSchema,
  backend: z.string().optional(),
  weightDtype: z.string().default('float32'),
  /** Each artifact's own bytes (as a client downloads it, decoded), filled in by the registry. */
  artifacts: z.record(z.string(), z.number().int()).default({}),
  /**
   * Artifacts stored compressed (gzip, when that makes a weight file or graph at least 1.25×
   * smaller: a pruned version's zeros), with the bytes stored; readers get the decoded file.
   */
  storedAs: z.record(z.string(), z.object({ encoding: z.literal('gzip'), bytes: z.number().int() })).optional(),
  /**
   * The registration that wrote the artifacts: they are stored under models/<name>/<version>/<set>/,
   * one set per attempt, so an attempt that lost its job can never overwrite a committed version's
   * files. Absent: the artifacts sit beside metadata.json (versions written before sets existed).
   */
  artifactSet: z
    .string()
    .regex(/^[0-9a-f]{8,64}$/)
    .optional(),
});
export type ModelVersionMeta = z.infer<typeof modelVersionMetaSchema>;
