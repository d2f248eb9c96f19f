import { z } from 'zod';
import { compressEvaluationSchema } from './evaluation.schema';
import { layersSchema } from './layers.schema';
import { datasetIdSchema, modelNameSchema, modelRefSchema } from './names.schema';
import { distributedSchema, trainPruneSchema } from './train.schema';

/** Weight storage quantization (tfjs format); uint8 also yields an int8 ONNX export for compute. */
export const quantizeSpecSchema = z.object({ dtype: z.enum(['uint8', 'uint16', 'float16']) }).strict();
export type QuantizeSpec = z.infer<typeof quantizeSpecSchema>;

/**
 * Magnitude pruning of the dense and conv2d kernels (biases, normalization and other weights are
 * kept): train's `fit.prune` (sparsity, scope, schedule) applied to the source. `fineTuneEpochs` > 0
 * trains on the source's training data afterwards with the masks re-applied after every optimizer
 * step; `schedule: "polynomial"` raises the sparsity from 0 to the target over those epochs (Zhu &
 * Gupta's cubic decay) instead of pruning all at once before them.
 */
export const pruneSpecSchema = trainPruneSchema
  .extend({
    fineTuneEpochs: z.number().int().min(0).max(100).default(0),
    /** Fine-tuning's learning rate (adam); the batch size, split and seed are the source's. */
    learningRate: z.number().positive().max(1).default(0.0005),
    /** Fine-tuning's batch (data-parallel: per worker, as train's `fit.batchSize`). */
    batchSize: z.number().int().min(1).max(65536).default(128),
    /**
     * Remove whole units of dense layers and filters of conv2d layers (the output layer's excepted),
     * the least important by kernel L1 norm, `sparsity` of each layer, and rewrite the following
     * layers: the model gets smaller and faster, not only sparse. One-shot, ranked per layer.
     */
    structured: z.boolean().default(false),
    /**
     * Fine-tune data-parallel, as a train job's `distributed` run (aggregator and shard jobs on the
     * workers; the parameter server holds the masks after every update). Magnitude pruning of the
     * registered source only: the first model-changing step, not structured.
     */
    distributed: distributedSchema.optional(),
  })
  .strict()
  .refine((p) => p.schedule === 'oneShot' || p.fineTuneEpochs > 0, {
    message: 'a polynomial schedule needs fineTuneEpochs of at least 1',
    path: ['schedule'],
  })
  .refine((p) => !p.structured || p.schedule === 'oneShot', {
    message: 'structured pruning is one-shot (fine-tune after it with fineTuneEpochs)',
    path: ['schedule'],
  })
  .refine((p) => !p.structured || p.scope === 'layer', {
    message: 'structured pruning ranks units within each layer',
    path: ['scope'],
  })
  .refine((p) => !p.distributed || p.fineTuneEpochs > 0, {
    message: 'a data-parallel fine-tune needs fineTuneEpochs of at least 1',
    path: ['distributed'],
  })
  .refine((p) => !p.distributed || !p.structured, {
    message:
      'not with structured pruning: the smaller model is no registered version the workers can start from (fine-tune it in one process)',
    path: ['distributed'],
  });
export type PruneSpec = z.infer<typeof pruneSpecSchema>;

/**
 * Knowledge distillation: a student trained on the teacher's outputs, the teacher being the model
 * as the step finds it (the source when distill comes first). The student is the teacher's own
 * topology with `width` × its units and filters (the output layer kept), or `layers` of the same
 * input and output shape. Loss for a classifier: alpha × cross-entropy with the true labels +
 * (1 − alpha) × T² × KL(teacher ‖ student) at temperature T (Hinton et al.); for a regression:
 * alpha × MSE with the true targets + (1 − alpha) × MSE with the teacher's values (T does not
 * apply). Over the source's training rows (or an uploaded table the teacher labels: `dataset`).
 */
export const distillSpecSchema = z
  .object({
    student: z.union([
      z
        .object({
          width: z.number().gt(0).lt(1),
          /**
           * `teacher` (default): the student starts as the teacher with its least important units
           * and filters removed (structured pruning's ranking, kernel L1 norm), as DistilBERT starts
           * from its teacher's layers (MNIST MLP at width 0.25: 93.4% → 93.7% at T 4, alpha 0.1;
           * 93.2% → 94.3% at T 2, alpha 0.5; bench/compress); `random`: fresh weights from the
           * topology's initializers.
           */
          init: z.enum(['teacher', 'random']).default('teacher'),
        })
        .strict(),
      z.object({ layers: layersSchema }).strict(),
    ]),
    temperature: z.number().min(1).max(100).default(4),
    alpha: z.number().min(0).max(1).default(0.1),
    epochs: z.number().int().min(1).max(1000).default(10),
    batchSize: z.number().int().min(1).max(65536).default(128),
    learningRate: z.number().positive().max(1).default(0.001),
    /**
     * Train on this uploaded table instead of the source's training rows: its rows (a label column,
     * if any, is ignored) encoded with the source's preprocessing, labelled by the teacher. For a
     * source trained on a table.
     */
    dataset: z.object({ id: datasetIdSchema }).strict().optional(),
  })
  .strict();
export type DistillSpec = z.infer<typeof distillSpecSchema>;

export const compressStepSchema = z.union([
  z.object({ distill: distillSpecSchema }).strict(),
  z.object({ prune: pruneSpecSchema }).strict(),
  z.object({ quantize: quantizeSpecSchema }).strict(),
]);
export type CompressStep = z.infer<typeof compressStepSchema>;
export type CompressStepKind = 'distill' | 'prune' | 'quantize';
export const stepKind = (step: CompressStep): CompressStepKind =>
  'distill' in step ? 'distill' : 'prune' in step ? 'prune' : 'quantize';

/**
 * What a compressed version must keep, measured on the source's held-out rows: a result outside it
 * is not registered and the job fails with the figures. Classification takes maxAccuracyDrop (a
 * fraction: 0.01 is one point), regression maxR2Drop and/or maxRmseIncrease (target units).
 */
export const compressGateSchema = z
  .object({
    maxAccuracyDrop: z.number().min(0).max(1).optional(),
    maxR2Drop: z.number().min(0).optional(),
    maxRmseIncrease: z.number().min(0).optional(),
  })
  .strict()
  .refine((g) => Object.values(g).some((v) => v !== undefined), {
    message: 'name a bound: maxAccuracyDrop, maxR2Drop or maxRmseIncrease',
    path: [],
  });
export type CompressGate = z.infer<typeof compressGateSchema>;

export const compressRequestSchema = z
  .object({
    source: modelRefSchema,
    /** Ordered steps, each kind at most once, quantize last (it changes the storage, not the weights' values you could prune or train). */
    steps: z.array(compressStepSchema).max(3).optional(),
    /** The older form of `steps: [{quantize}]`, kept working. */
    quantize: quantizeSpecSchema.optional(),
    gate: compressGateSchema.optional(),
    /** Registered under this name; the source's name when absent. */
    targetName: modelNameSchema.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.steps !== undefined && r.quantize !== undefined)
      ctx.addIssue({ code: 'custom', path: ['quantize'], message: 'give either "steps" or "quantize", not both' });
    if (r.steps === undefined && r.quantize === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['steps'],
        message: 'name at least one compression ("steps", or the older "quantize")',
      });
    if (r.steps?.length === 0)
      ctx.addIssue({ code: 'custom', path: ['steps'], message: 'must hold at least one step' });
    const seen = new Set<CompressStepKind>();
    (r.steps ?? []).forEach((step, i) => {
      const kind = stepKind(step);
      if (seen.has(kind))
        ctx.addIssue({ code: 'custom', path: ['steps', i], message: `"${kind}" cannot repeat: give it once` });
      seen.add(kind);
      if ('prune' in step && step.prune.distributed && seen.has('distill'))
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'prune', 'distributed'],
          message: 'a data-parallel fine-tune starts from the registered source: put prune before distill',
        });
      if (kind === 'quantize' && i < (r.steps?.length ?? 0) - 1)
        ctx.addIssue({ code: 'custom', path: ['steps', i], message: '"quantize" must be the last step' });
    });
  });
export type CompressRequest = z.infer<typeof compressRequestSchema>;
export type CompressJobData = CompressRequest;

/** The steps a request runs, in order: the older `{quantize}` form is one quantize step. */
export function compressSteps(req: Pick<CompressRequest, 'steps' | 'quantize'>): CompressStep[] {
  return req.steps ?? (req.quantize ? [{ quantize: req.quantize }] : []);
}

export const compressProgressSchema = z.object({
  stage: z.enum(['loading', 'compressing', 'evaluating', 'saving']),
  percent: z.number(),
  /** The step running (index into steps) and its kind. */
  step: z.number().int().optional(),
  kind: z.enum(['distill', 'prune', 'quantize']).optional(),
  epoch: z.number().int().optional(),
  epochs: z.number().int().optional(),
  loss: z.number().optional(),
});
export type CompressProgress = z.infer<typeof compressProgressSchema>;

export const compressResultSchema = z.object({
  model: modelRefSchema,
  /** model.json + weights.bin of the source and of the new version. */
  bytesBefore: z.number().int(),
  bytesAfter: z.number().int(),
  ratio: z.number(),
  backend: z.string(),
  /** Source and result side by side on the source's held-out rows; absent when the source's data is gone (older form only). */
  evaluation: compressEvaluationSchema.optional(),
});
export type CompressResult = z.infer<typeof compressResultSchema>;
