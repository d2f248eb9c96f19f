import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '@tq/contracts';
import { modelSaveHandler, type VersionWriter } from '@tq/storage';
import { PREPROCESSING_ARTIFACT } from '../inference/artifact-names';
import { onnxArtifacts } from '../inference/onnx-artifacts';

export interface ModelArtifactOptions {
  /** Trained on a table: preprocessing.json, and ONNX as network.onnx (served) + model.onnx (the whole pipeline). */
  preprocessing?: PreprocessingSpec | undefined;
}

/**
 * A trained model's artifacts, written through a registration's VersionWriter
 * (ModelRegistry.register's callback): the tfjs files, preprocessing.json for a table model, and the ONNX graphs (see
 * inference/artifact-names.ts). A model ONNX cannot express is still served by tfjs, so a failed
 * export does not fail the job; it is reported through `log`, never swallowed.
 */
export async function writeModelArtifacts(
  model: tf.LayersModel,
  out: VersionWriter,
  log: (line: string) => void,
  opts: ModelArtifactOptions = {},
): Promise<void> {
  await model.save(modelSaveHandler(out));
  if (opts.preprocessing) await out.put(PREPROCESSING_ARTIFACT, JSON.stringify(opts.preprocessing, null, 2));
  let onnx;
  try {
    onnx = onnxArtifacts(model, { preprocessing: opts.preprocessing });
  } catch (err) {
    log(`no ONNX export (inference will use tfjs): ${message(err)}`);
    return;
  }
  if (onnx.pipelineError !== undefined)
    log(`no whole-pipeline ONNX export (model.onnx); network.onnx is written: ${message(onnx.pipelineError)}`);
  for (const [file, bytes] of onnx.files) await out.put(file, bytes);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
