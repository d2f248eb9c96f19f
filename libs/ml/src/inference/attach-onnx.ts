import type * as tf from '@tensorflow/tfjs';
import type { ModelRef, ModelVersionMeta } from '@tq/contracts';
import type { ModelRegistry } from '@tq/storage';
import { exportOnnx } from '../onnx';
import { ONNX_ARTIFACT, ONNX_INT8_ARTIFACT } from './inference-engine';

export interface AttachOnnxOptions {
  opset?: number;
  /** Also store an int8 graph as model.int8.onnx (the engine prefers it). */
  quantize?: 'int8';
  /** Calibration rows [rows, featureCount] for static int8 scales; without them (or undefined) int8 is dynamic. */
  calibration?: Float32Array | undefined;
}

/**
 * Exports `model` (the tfjs model of version `ref`) and stores model.onnx — plus model.int8.onnx when
 * asked — as artifacts of that version, so the inference engine serves it through onnxruntime and
 * users can download it. Returns the version's updated metadata.
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
  const opset = opts.opset === undefined ? {} : { opset: opts.opset };
  let updated = await registry.putArtifact(ref, ONNX_ARTIFACT, exportOnnx(model, opset));
  if (opts.quantize === 'int8') {
    updated = await registry.putArtifact(
      ref,
      ONNX_INT8_ARTIFACT,
      exportOnnx(model, { ...opset, quantize: 'int8', calibration: opts.calibration }),
    );
  }
  return updated;
}
