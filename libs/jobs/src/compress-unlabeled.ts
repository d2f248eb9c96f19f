import * as tf from '@tensorflow/tfjs';
import { ConflictError, FieldError, NotFoundError, throwIfCancelled, type ModelVersionMeta } from '@tq/contracts';
import { readPreprocessing, type TabularData } from '@tq/ml';
import type { ModelRegistry } from '@tq/storage';
import type { TableDatasets, TableLimits } from '@tq/tables';
import { openEncodedTable } from './table-rows';

const CHUNK_ROWS = 4096;

/**
 * An uploaded table as distillation data: its rows encoded with the source's preprocessing.json (a
 * label column, if the upload has one, is not read) and labelled with the teacher's most probable
 * class (a regression teacher's value). All rows train: the evaluation's held-out rows stay the source's own. Bad input names
 * `field` (`steps.<i>.distill.dataset`): a source not trained on a table, an upload that is missing
 * (404), still profiling (409) or has no rows.
 */
export async function teacherLabelledTable(
  teacher: tf.LayersModel,
  source: ModelVersionMeta,
  id: string,
  field: string,
  deps: { registry: ModelRegistry; datasets: TableDatasets; tableLimits?: Partial<TableLimits> | undefined },
  signal: AbortSignal,
): Promise<TabularData> {
  const spec = await readPreprocessing(deps.registry, source, source);
  if (!spec)
    throw new FieldError(
      field,
      `${source.name} v${source.version} was not trained on a table: an upload has no preprocessing to reach its inputs`,
    );
  let status: string;
  try {
    status = (await deps.datasets.get(id)).status;
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError(`${field}.id`, `dataset "${id}" does not exist`);
    throw err;
  }
  if (status !== 'ready') throw new ConflictError(`${field}.id`, `dataset "${id}" is ${status}, not ready`);
  const opened = await openEncodedTable(deps.datasets, id, spec, {
    chunkRows: CHUNK_ROWS,
    field: `${field}.id`,
    limits: deps.tableLimits,
  });
  const parts: Float32Array[] = [];
  let rows = 0;
  for await (const chunk of opened.chunks) {
    throwIfCancelled(signal);
    parts.push(chunk.features.subarray(0, chunk.rows * spec.width));
    rows += chunk.rows;
  }
  if (rows === 0) throw new FieldError(`${field}.id`, `dataset "${id}" has no rows`);
  const x = new Float32Array(rows * spec.width);
  let at = 0;
  for (const p of parts) {
    x.set(p, at);
    at += p.length;
  }
  // A classifier's most probable class; a regression's value (on the standardized target it learnt).
  const regression = source.task === 'regression';
  const y = regression ? new Float32Array(rows) : new Int32Array(rows);
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, rows - start);
    const labels = tf.tidy(() => {
      const batch = tf.tensor2d(x.subarray(start * spec.width, (start + n) * spec.width), [n, spec.width]);
      const out = teacher.predict(batch) as tf.Tensor;
      return regression ? tf.reshape(out, [n]) : tf.argMax(out, -1);
    });
    y.set(await labels.data(), start);
    labels.dispose();
  }
  return {
    x,
    y,
    rows,
    featureCount: spec.width,
    inputShape: [spec.width],
    task: regression ? 'regression' : 'classification',
    classes: regression ? [] : source.classes,
    validationRows: 0,
    preprocessing: spec,
  };
}
