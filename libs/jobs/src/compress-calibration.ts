import { TqError, type ModelVersionMeta, type PreprocessingSpec } from '@tq/contracts';
import type { TableLimits } from '@tq/tables';
import { BlobIntegrityError } from '@tq/storage';
import { openEncodedTable, type TableSources } from './table-rows';

/** Rows of the training data used to calibrate int8 activation scales. */
export const CALIBRATION_ROWS = 512;

/**
 * Calibration rows when the source's training data does not load as training data (an upload
 * read without its label, a version from before lineage.training): the table's first rows encoded
 * with the model's preprocessing, as the older quantize-only job took them. None (dynamic int8
 * scales) when the upload is gone or no longer reads.
 */
export async function tableCalibrationRows(
  deps: { datasets: TableSources; tableLimits?: Partial<TableLimits> | undefined },
  source: ModelVersionMeta,
  spec: PreprocessingSpec | undefined,
): Promise<Float32Array | undefined> {
  const id = source.lineage.dataset?.id;
  if (!id || !spec) return undefined;
  try {
    const opened = await openEncodedTable(deps.datasets, id, spec, {
      chunkRows: CALIBRATION_ROWS,
      field: 'dataset',
      limits: deps.tableLimits,
    });
    const first = await opened.chunks.next();
    await opened.chunks.return(undefined); // stops reading and closes the source
    return first.done ? undefined : first.value.features;
  } catch (err) {
    // A table that does not fit: no calibration. A tampered one (encryption at rest): the job fails.
    if (err instanceof TqError && !(err instanceof BlobIntegrityError)) return undefined;
    throw err;
  }
}
