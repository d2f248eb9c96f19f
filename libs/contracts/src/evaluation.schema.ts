import { z } from 'zod';

/** One model's figures on a held-out split: quality, size and speed. */
export const modelFiguresSchema = z.object({
  /** Classification: share of held-out rows right (0..1). */
  accuracy: z.number().optional(),
  /** Regression, in the target's units. */
  r2: z.number().optional(),
  rmse: z.number().optional(),
  loss: z.number(),
  parameters: z.number().int(),
  /** Parameters that are not exactly zero (what pruning removes without changing shapes). */
  nonZeroParameters: z.number().int(),
  /** model.json + weights.bin as files, and gzip-compressed (level 9: what goes over the wire). */
  bytesRaw: z.number().int(),
  bytesGzip: z.number().int(),
  /**
   * The same files as the registry stores them: weights.bin gzipped when that makes it at least
   * 1.25× smaller (unstructured sparsity shows on disk). Absent in figures recorded before.
   */
  bytesStored: z.number().int().optional(),
  /** Multiply-adds × 2 of dense and conv layers for one row (zeros included: unstructured sparsity does not lower them). */
  flopsPerRow: z.number().int(),
  /** Through the inference engine's runner (the artifact it would serve): rows/s at batch 1024 (the best of 8 passes), median ms at batch 1. */
  rowsPerSec: z.number(),
  p50LatencyMs: z.number(),
  /** The artifact timed (model.int8.onnx, model.onnx, model.json) and the engine. */
  artifact: z.string(),
  engine: z.string(),
});
export type ModelFigures = z.infer<typeof modelFiguresSchema>;

export const compressEvaluationSchema = z.object({
  /** Held-out rows evaluated on: the source's validation split, same preprocessing. */
  rows: z.number().int(),
  /** Where the split came from: recorded at training, or the train defaults for a version that predates the record. */
  split: z.object({
    validationSplit: z.number(),
    seed: z.number().int(),
    recorded: z.boolean(),
  }),
  source: modelFiguresSchema,
  result: modelFiguresSchema,
  /** result − source for accuracy / r2 / rmse (a negative accuracy is a drop); gzipRatio source ÷ result bytes, rowsPerSecRatio result ÷ source (the speed-up). */
  delta: z.object({
    accuracy: z.number().optional(),
    r2: z.number().optional(),
    rmse: z.number().optional(),
    gzipRatio: z.number(),
    rowsPerSecRatio: z.number(),
  }),
});
export type CompressEvaluation = z.infer<typeof compressEvaluationSchema>;
