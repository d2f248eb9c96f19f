import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { PreprocessingSpec } from '@tq/contracts';
import { fileSaveHandler, writeFileAtomic } from '@tq/storage';
import { ONNX_ARTIFACT } from '../inference/inference-engine';
import { exportOnnx } from '../onnx';

/** Where a table model's fitted preprocessing is kept beside its weights (documented in libs/tables README). */
export const PREPROCESSING_ARTIFACT = 'preprocessing.json';

/**
 * A trained model's artifacts, written into a registry staging folder (ModelRegistry.register's
 * callback): the tfjs files, preprocessing.json for a table model, and model.onnx. A model ONNX cannot express is still served by tfjs,
 * so a failed export does not fail the job; it is reported through `log`, never swallowed.
 */
export async function writeModelArtifacts(
  model: tf.LayersModel,
  dir: string,
  log: (line: string) => void,
  opts: { preprocessing?: PreprocessingSpec | undefined } = {},
): Promise<void> {
  await model.save(fileSaveHandler(dir));
  if (opts.preprocessing)
    await writeFileAtomic(join(dir, PREPROCESSING_ARTIFACT), JSON.stringify(opts.preprocessing, null, 2));
  let onnx: Uint8Array;
  try {
    onnx = exportOnnx(model);
  } catch (err) {
    log(`no ONNX export (inference will use tfjs): ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  await writeFileAtomic(join(dir, ONNX_ARTIFACT), onnx);
}
