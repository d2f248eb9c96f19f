import type { DatasetRef } from '@tq/contracts';
import type { DatasetStore } from '@tq/storage';
import type { TabularData } from './tabular-data';
import { loadBuiltinDataset } from './builtin';

/** The rows a train / infer job names: a built-in dataset or an uploaded one (DatasetNotFoundError if unknown). */
export async function resolveDataset(ref: DatasetRef, store: DatasetStore): Promise<TabularData> {
  return 'builtin' in ref ? loadBuiltinDataset(ref.builtin) : { ...(await store.load(ref.id)), task: 'classification' };
}
