import * as tf from '@tensorflow/tfjs';
import type { ModelRef, ModelVersionMeta } from '@tq/contracts';
import { modelLoadHandler, modelSaveHandler, type ModelRegistry, type NewVersionMeta } from '@tq/storage';

/** Registers a model as the next version of `name` (model.json + weights.bin + metadata.json). */
export async function saveModelVersion(
  registry: ModelRegistry,
  name: string,
  model: tf.LayersModel,
  meta: NewVersionMeta,
): Promise<ModelVersionMeta> {
  return registry.register(name, meta, async (out) => {
    await model.save(modelSaveHandler(out));
  });
}

/**
 * Loads a registered version with stock tf.loadLayersModel (quantized weights are dequantized by
 * tfjs). The caller owns the model and disposes it. ModelNotFoundError when the version is absent.
 */
export async function loadModelVersion(
  registry: ModelRegistry,
  ref: ModelRef,
): Promise<{ model: tf.LayersModel; meta: ModelVersionMeta }> {
  const meta = await registry.getVersion(ref);
  const model = await tf.loadLayersModel(modelLoadHandler(registry, ref));
  return { model, meta };
}
