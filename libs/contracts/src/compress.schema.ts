import { z } from 'zod';
import { modelNameSchema, modelRefSchema } from './names.schema';

export const compressRequestSchema = z
  .object({
    source: modelRefSchema,
    /** Weight storage quantization (tfjs format); uint8 also yields an int8 ONNX export for compute. */
    quantize: z
      .object({ dtype: z.enum(['uint8', 'uint16', 'float16']) })
      .strict()
      .optional(),
    /** Registered under this name; the source's name when absent. */
    targetName: modelNameSchema.optional(),
  })
  .strict()
  .refine((r) => r.quantize !== undefined, { message: 'name at least one compression (quantize)', path: ['quantize'] });
export type CompressRequest = z.infer<typeof compressRequestSchema>;
export type CompressJobData = CompressRequest;

export const compressProgressSchema = z.object({
  stage: z.enum(['loading', 'compressing', 'evaluating', 'saving']),
  percent: z.number(),
});
export type CompressProgress = z.infer<typeof compressProgressSchema>;

export const compressResultSchema = z.object({
  model: modelRefSchema,
  bytesBefore: z.number().int(),
  bytesAfter: z.number().int(),
  ratio: z.number(),
  backend: z.string(),
});
export type CompressResult = z.infer<typeof compressResultSchema>;
