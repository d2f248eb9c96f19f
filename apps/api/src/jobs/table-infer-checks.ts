import { ConflictError, FieldError, type DatasetInfo, type ModelVersionMeta } from '@tq/contracts';

/**
 * An infer job on an uploaded table: the model must have been trained on a table (its rows are
 * encoded with the model's preprocessing.json), the dataset profiled, and every input column of
 * the model among the table's columns (the label and other columns may be there or not).
 */
export function checkInferTable(meta: ModelVersionMeta, info: DatasetInfo): void {
  const field = 'input.dataset.id';
  const model = `model ${meta.name} v${meta.version}`;
  if (!meta.inputColumns)
    throw new FieldError(field, `${model} was not trained on a table, so it reads no columns: send input.instances`);
  if (info.status === 'profiling')
    throw new ConflictError(
      field,
      `dataset "${info.id}" is still being profiled: retry once GET /v1/datasets/${info.id} says ready`,
    );
  if (info.status === 'failed')
    throw new FieldError(field, `dataset "${info.id}" could not be read: ${info.error?.message ?? 'profiling failed'}`);
  const columns = new Set(info.profile?.columns.map((c) => c.name) ?? []);
  const missing = meta.inputColumns.filter((c) => !columns.has(c));
  if (missing.length > 0)
    throw new FieldError(
      field,
      `dataset "${info.id}" has no column ${missing.map((c) => `"${c}"`).join(', ')}, which ${model} reads`,
    );
}
