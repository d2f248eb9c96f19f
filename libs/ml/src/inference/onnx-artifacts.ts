import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '@tq/contracts';
import { exportOnnx, exportPipelineOnnx, type ExportOnnxOptions } from '../onnx';
import { NETWORK_INT8_ARTIFACT, NETWORK_ONNX_ARTIFACT, ONNX_ARTIFACT, ONNX_INT8_ARTIFACT } from './artifact-names';

export interface OnnxArtifactOptions extends Pick<ExportOnnxOptions, 'opset' | 'calibration'> {
  /** Also an int8 graph (model.int8.onnx, or network.int8.onnx + model.int8.onnx for a table model). */
  quantize?: 'int8';
  /** The model was trained on a table: model*.onnx take raw columns, network*.onnx features. */
  preprocessing?: PreprocessingSpec | undefined;
}

export interface OnnxArtifacts {
  /** Artifact name → ONNX bytes, the graphs the engine runs first. */
  files: Array<[string, Uint8Array]>;
  /** Why the whole-pipeline graph could not be written, if it could not (the network's still is). */
  pipelineError?: Error;
}

/**
 * The ONNX graphs of a version (see artifact-names.ts). Throws when the network itself cannot be
 * exported (callers fall back to tfjs); a pipeline that cannot be (a column name the graph cannot
 * carry) leaves the network graphs and says why, so serving keeps its fast path.
 */
export function onnxArtifacts(model: tf.LayersModel, opts: OnnxArtifactOptions = {}): OnnxArtifacts {
  const base: ExportOnnxOptions = opts.opset === undefined ? {} : { opset: opts.opset };
  const variants: ExportOnnxOptions[] = [base];
  if (opts.quantize === 'int8') variants.push({ ...base, quantize: 'int8', calibration: opts.calibration });
  const spec = opts.preprocessing;
  const networkNames = spec ? [NETWORK_ONNX_ARTIFACT, NETWORK_INT8_ARTIFACT] : [ONNX_ARTIFACT, ONNX_INT8_ARTIFACT];
  const files = variants.map((v, i): [string, Uint8Array] => [networkNames[i]!, exportOnnx(model, v)]);
  if (!spec) return { files };
  try {
    const pipelines = variants.map((v, i): [string, Uint8Array] => [
      [ONNX_ARTIFACT, ONNX_INT8_ARTIFACT][i]!,
      exportPipelineOnnx(model, spec, v),
    ]);
    return { files: [...files, ...pipelines] };
  } catch (err) {
    return { files, pipelineError: err instanceof Error ? err : new Error(String(err)) };
  }
}
