import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '@tq/contracts';
import { fileSaveHandler, writeFileAtomic } from '@tq/storage';
import { PREPROCESSING_ARTIFACT } from '../inference/artifact-names';
import { onnxArtifacts } from '../inference/onnx-artifacts';

export interface ModelArtifactOptions {
  /** Trained on a table: preprocessing.json, and ONNX as network.onnx (served) + model.onnx (the whole pipeline). */
  preprocessing?: PreprocessingSpec | undefined;
}

/**
 * A trained model's artifacts, written into a registry staging folder (ModelRegistry.register's
 * callback): the tfjs files, preprocessing.json for a table model, and the ONNX graphs (see
 * inference/artifact-names.ts). A model ONNX cannot express is still served by tfjs, so a failed
 * export does not fail the job; it is reported through `log`, never swallowed.
 */
export async function writeModelArtifacts(
  model: tf.LayersModel,
  dir: string,
  log: (line: string) => void,
  opts: ModelArtifactOptions = {},
): Promise<void> {
  await model.save(fileSaveHandler(dir));
  if (opts.preprocessing)
    await writeFileAtomic(join(dir, PREPROCESSING_ARTIFACT), JSON.stringify(opts.preprocessing, null, 2));
  let onnx;
  try {
    onnx = onnxArtifacts(model, { preprocessing: opts.preprocessing });
  } catch (err) {
    log(`no ONNX export (inference will use tfjs): ${message(err)}`);
    return;
  }
  if (onnx.pipelineError !== undefined)
    log(`no whole-pipeline ONNX export (model.onnx); network.onnx is written: ${message(onnx.pipelineError)}`);
  for (const [file, bytes] of onnx.files) await writeFileAtomic(join(dir, file), bytes);
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
