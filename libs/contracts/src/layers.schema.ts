import { z } from 'zod';

const activation = z.enum([
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'tanh',
  'softmax',
  'softplus',
  'softsign',
  'hardSigmoid',
  'swish',
  'mish',
  'gelu',
]);
const positiveInt = z.number().int().positive();
const shape = z.array(positiveInt).min(1).max(4);
const pair = z.union([positiveInt, z.tuple([positiveInt, positiveInt])]);
/** Only the first layer may declare its input shape; the others infer it. */
const common = {
  inputShape: shape.optional(),
  name: z
    .string()
    .regex(/^[A-Za-z0-9_]{1,64}$/)
    .optional(),
};

export const denseLayerSchema = z
  .object({
    type: z.literal('dense'),
    units: positiveInt.max(65536),
    activation: activation.optional(),
    useBias: z.boolean().optional(),
    ...common,
  })
  .strict();
export const conv2dLayerSchema = z
  .object({
    type: z.literal('conv2d'),
    filters: positiveInt.max(4096),
    kernelSize: pair,
    strides: pair.optional(),
    padding: z.enum(['valid', 'same']).optional(),
    dilationRate: pair.optional(),
    activation: activation.optional(),
    useBias: z.boolean().optional(),
    ...common,
  })
  .strict();
const pooling = {
  poolSize: pair.optional(),
  strides: pair.optional(),
  padding: z.enum(['valid', 'same']).optional(),
  ...common,
};
export const maxPooling2dLayerSchema = z.object({ type: z.literal('maxPooling2d'), ...pooling }).strict();
export const averagePooling2dLayerSchema = z.object({ type: z.literal('averagePooling2d'), ...pooling }).strict();
export const flattenLayerSchema = z.object({ type: z.literal('flatten'), ...common }).strict();
export const dropoutLayerSchema = z
  .object({ type: z.literal('dropout'), rate: z.number().min(0).lt(1), ...common })
  .strict();
export const batchNormalizationLayerSchema = z
  .object({
    type: z.literal('batchNormalization'),
    momentum: z.number().gt(0).lt(1).optional(),
    epsilon: z.number().positive().optional(),
    ...common,
  })
  .strict();
export const reshapeLayerSchema = z.object({ type: z.literal('reshape'), targetShape: shape, ...common }).strict();
export const activationLayerSchema = z.object({ type: z.literal('activation'), activation, ...common }).strict();

export const layerSchema = z.discriminatedUnion('type', [
  denseLayerSchema,
  conv2dLayerSchema,
  maxPooling2dLayerSchema,
  averagePooling2dLayerSchema,
  flattenLayerSchema,
  dropoutLayerSchema,
  batchNormalizationLayerSchema,
  reshapeLayerSchema,
  activationLayerSchema,
]);
export type LayerSpec = z.infer<typeof layerSchema>;
export const LAYER_TYPES = layerSchema.options.map((o) => o.shape.type.value);

/**
 * The first layer declares inputShape, except on an uploaded table where it may be left out (the
 * preprocessed width fills it in): the API's and the worker's shape checks say which.
 */
export const layersSchema = z.array(layerSchema).min(1).max(64);
