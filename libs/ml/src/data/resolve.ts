import { FieldError, type DatasetRef } from '@tq/contracts';
import type { TabularData } from './tabular-data';
import { loadBuiltinDataset } from './builtin';

/**
 * The matrices of a built-in dataset. An uploaded dataset is a stored table (DatasetStore:
 * source + profile), not a matrix: a train request prepares it (fitted preprocessing, split) on
 * the table path, so an id here is refused rather than answered with a wrong matrix.
 * `_store` is unused; it stays so the callers (train, compress, the parameter server) need no edit
 * until the table path (helper B's loadTrainingData) replaces this call for uploaded ids.
 */
export async function resolveDataset(ref: DatasetRef, _store?: unknown): Promise<TabularData> {
  if ('builtin' in ref) return loadBuiltinDataset(ref.builtin);
  throw new FieldError('dataset.id', `dataset "${ref.id}" is an uploaded table; train on it through the table path`);
}
