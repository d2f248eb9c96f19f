import type * as tf from '@tensorflow/tfjs';
import type { ModelRef, ModelVersionMeta, PreprocessingSpec } from '@tq/contracts';
import type { ModelRegistry } from '@tq/storage';
import { onnxArtifacts } from './onnx-artifacts';

export interface AttachOnnxOptions {
  opset?: number;
  /** Also store an int8 graph as model.int8.onnx (the engine prefers it). */
  quantize?: 'int8';
  /** Calibration rows [rows, featureCount] for static int8 scales; without them (or undefined) int8 is dynamic. */
  calibration?: Float32Array | undefined;
  /** The version was trained on a table: network*.onnx for the engine, model*.onnx the whole pipeline. */
  preprocessing?: PreprocessingSpec | undefined;
}

/**
 * Exports `model` (the tfjs model of version `ref`) and stores model.onnx — plus model.int8.onnx when
 * asked, and for a table model network.onnx / network.int8.onnx (see artifact-names.ts) — as
 * artifacts of that version, so the inference engine serves it through onnxruntime and users can
 * download it. Returns the version's updated metadata.
 */
export async function attachOnnx(
  registry: ModelRegistry,
  ref: ModelRef,
  model: tf.LayersModel,
  opts: AttachOnnxOptions = {},
): Promise<ModelVersionMeta> {
  const meta = await registry.getVersion(ref);
  const featureCount = (model.inputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  if (featureCount !== meta.featureCount)
    throw new Error(
      `${ref.name} v${ref.version} takes ${meta.featureCount} features, the model given takes ${featureCount}: not this version's model`,
    );
  const { files, pipelineError } = onnxArtifacts(model, opts);
  if (pipelineError !== undefined) throw pipelineError;
  let updated = meta;
  for (const [file, bytes] of files) updated = await registry.putArtifact(ref, file, bytes);
  return updated;
}
