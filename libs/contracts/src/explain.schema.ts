import { z } from 'zod';
import { instancesSchema, predictionSchema, recordsSchema } from './infer.schema';
import { modelRefSchema } from './names.schema';

/**
 * POST /v1/models/:name/versions/:version/explain (issue 10): integrated gradients of one output
 * per row. The rows are given as for predict; `steps` trapezoid intervals along the path from the
 * baseline to the row; `baseline` "zeros" (all-zero features: for a table model, every numeric at
 * its training mean and no category set) or "mean" (the training rows' mean features, recorded by
 * versions trained since explanations exist); absent: "mean" where recorded, else "zeros".
 * `target`: the output to explain, a class index or label (classification; default each row's
 * predicted class); a regression explains its value.
 */
// One object with both row kinds optional (not a union of two): a bad `steps` is then reported
// as `steps`, not as whichever union branch zod tried last.
export const explainRequestSchema = z
  .object({
    instances: instancesSchema.optional(),
    records: recordsSchema.optional(),
    steps: z.number().int().min(1).max(512).default(64),
    baseline: z.enum(['zeros', 'mean']).optional(),
    target: z.union([z.number().int().min(0), z.string().min(1).max(256)]).optional(),
  })
  .strict()
  .superRefine((body, ctx) => {
    if ((body.instances === undefined) === (body.records === undefined))
      ctx.addIssue({ code: 'custom', path: ['instances'], message: 'send either instances or records (one of them)' });
  });
export type ExplainRequest = z.infer<typeof explainRequestSchema>;
export const EXPLAIN_BASELINES = ['zeros', 'mean'] as const;
export type ExplainBaseline = (typeof EXPLAIN_BASELINES)[number];

/** The output a row's attributions explain: a class's probability, or the regression's value. */
export const explainTargetSchema = z.union([
  z.object({ classIndex: z.number().int(), label: z.string().optional() }).strict(),
  z.object({ value: z.literal(true) }).strict(),
]);
export type ExplainTarget = z.infer<typeof explainTargetSchema>;

export const explanationSchema = z.object({
  prediction: predictionSchema,
  target: explainTargetSchema,
  /**
   * Per feature, in the target's units (a probability; a regression's target units). A table
   * model's: per input column, the sum of its encoded features' (one-hot slots, the scaled value).
   */
  attributions: z.union([z.array(z.number()), z.record(z.string(), z.number())]),
  /** Table models: the encoded features' own attributions, named `column` or `column=category`. */
  features: z.array(z.object({ name: z.string(), attribution: z.number() })).optional(),
  /** The target at the row and at the baseline. */
  value: z.number(),
  baselineValue: z.number(),
  /** sum(attributions) − (value − baselineValue): the quadrature's error; more steps shrink it. */
  completenessGap: z.number(),
});
export type Explanation = z.infer<typeof explanationSchema>;

export const explainResponseSchema = z.object({
  model: modelRefSchema,
  method: z.literal('integrated-gradients'),
  baseline: z.enum(EXPLAIN_BASELINES),
  steps: z.number().int(),
  explanations: z.array(explanationSchema),
  unknownCategories: z.record(z.string(), z.number().int()).optional(),
});
export type ExplainResponse = z.infer<typeof explainResponseSchema>;
