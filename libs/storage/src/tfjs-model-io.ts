import * as tf from '@tensorflow/tfjs';
import type { ModelRef } from '@tq/contracts';
import type { ModelRegistry, VersionWriter } from './model-registry';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/**
 * tfjs's file:// handlers live in tfjs-node, which cannot install everywhere; these write the
 * layout stock tf.loadLayersModel(url) loads over HTTP (model.json + weights.bin), through a
 * registration's VersionWriter, and load it back from bytes, wherever the store keeps them.
 */
export function modelSaveHandler(out: VersionWriter): tf.io.IOHandler {
  return tf.io.withSaveHandler(async (artifacts) => {
    const weightData = artifacts.weightData ? concatWeightData(artifacts.weightData) : new Uint8Array();
    const modelJson = {
      modelTopology: artifacts.modelTopology,
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      trainingConfig: artifacts.trainingConfig,
      weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
    };
    await out.put(WEIGHTS_BIN, weightData);
    await out.put(MODEL_JSON, JSON.stringify(modelJson));
    return {
      modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weightData.byteLength },
    };
  });
}

/** A registered version's tfjs artifacts (model.json + weights.bin), read from the store. */
export async function readModelArtifacts(registry: ModelRegistry, ref: ModelRef): Promise<tf.io.ModelArtifacts> {
  const modelJson = JSON.parse((await registry.readArtifact(ref, MODEL_JSON)).toString('utf8')) as tf.io.ModelJSON;
  const weights = await registry.readArtifact(ref, WEIGHTS_BIN);
  return {
    modelTopology: modelJson.modelTopology,
    // Optional in model.json: copied only when present.
    ...(modelJson.format !== undefined ? { format: modelJson.format } : {}),
    ...(modelJson.generatedBy !== undefined ? { generatedBy: modelJson.generatedBy } : {}),
    ...(modelJson.trainingConfig !== undefined ? { trainingConfig: modelJson.trainingConfig } : {}),
    weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
    weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
  };
}

/** For tf.loadLayersModel: version `ref` as the registry stores it. */
export function modelLoadHandler(registry: ModelRegistry, ref: ModelRef): tf.io.IOHandler {
  return { load: () => readModelArtifacts(registry, ref) };
}

function concatWeightData(data: tf.io.WeightData): Uint8Array {
  const buffers = Array.isArray(data) ? data : [data];
  const out = new Uint8Array(buffers.reduce((n, b) => n + b.byteLength, 0));
  let offset = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out;
}
