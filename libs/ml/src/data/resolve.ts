import type { DatasetRef } from '@tq/contracts';
import type { DatasetStore, TabularData } from '@tq/storage';
import { loadBuiltinDataset } from './builtin';

/** The rows a train / infer job names: a built-in dataset or an uploaded one (DatasetNotFoundError if unknown). */
export async function resolveDataset(ref: DatasetRef, store: DatasetStore): Promise<TabularData> {
  return 'builtin' in ref ? loadBuiltinDataset(ref.builtin) : store.load(ref.id);
}
