import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { localJobMeta, type ColumnOverrides, type DatasetInfo, type Task } from '@tq/contracts';
import { profileDatasetJob } from '@tq/jobs';
import { ArtifactStore, DatasetNotFoundError, DatasetStore } from '@tq/storage';
import { DEFAULT_TABLE_LIMITS, type TableDatasets, type TableFormat } from '@tq/tables';
import { jsonlStream, type PublicJson } from '../../tables/test/public-tables';

export type PublicTable = PublicJson | 'seattle-weather';

const DATA = join(dirname(require.resolve('vega-datasets')), '..', 'data');

/** A public table's bytes as an upload sends them: cars / penguins as JSONL, seattle-weather as its CSV. */
export function sourceOf(name: PublicTable): { format: TableFormat; stream: Readable } {
  return name === 'seattle-weather'
    ? { format: 'csv', stream: createReadStream(join(DATA, 'seattle-weather.csv')) }
    : { format: 'jsonl', stream: jsonlStream(name) };
}

export interface TableUpload {
  table: PublicTable;
  labelColumn: string;
  task?: Task;
  columns?: ColumnOverrides;
}

/** Temp dataset stores made here, removed when the test process exits. */
const roots: string[] = [];
process.once('exit', () => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

/**
 * Public tables uploaded as the API does (DatasetStore.create into a temp artifact store) and
 * profiled by the real profiling job body, seen under the test's own ids: the store picks its
 * ids, the tests name their requests before it runs. `status` leaves a table still profiling
 * (no profile run) or failed (the store's markFailed with that error).
 */
export async function publicTableDatasets(
  uploads: Record<string, TableUpload>,
  status: Record<string, Pick<DatasetInfo, 'status' | 'error'>> = {},
): Promise<TableDatasets> {
  const root = mkdtempSync(join(tmpdir(), 'tq-table-fixtures-'));
  roots.push(root);
  const store = new DatasetStore(new ArtifactStore(root));
  const storedIds = new Map<string, string>();
  for (const [id, u] of Object.entries(uploads)) {
    const { format, stream } = sourceOf(u.table);
    const meta = { name: u.table, format, labelColumn: u.labelColumn, task: u.task, columns: u.columns };
    const stored = await store.create(meta, stream, 1 << 30);
    storedIds.set(id, stored.id);
    const wanted = status[id];
    if (wanted?.status === 'profiling') continue;
    if (wanted?.status === 'failed') {
      await store.markFailed(stored.id, wanted.error ?? { field: 'file', message: 'failed', status: 400 });
      continue;
    }
    const data = { datasetId: stored.id, format, labelColumn: u.labelColumn, task: u.task, columns: u.columns };
    await profileDatasetJob(data, { datasets: store, limits: DEFAULT_TABLE_LIMITS }, profileHooks(stored.id));
  }
  const storedId = (id: string): string => {
    const found = storedIds.get(id);
    if (!found) throw new DatasetNotFoundError(id);
    return found;
  };
  return {
    get: async (id) => ({ ...(await store.get(storedId(id))), id }),
    openSource: (id) => store.openSource(storedId(id)),
  };
}

function profileHooks(id: string) {
  return {
    jobId: `profile-${id}`,
    meta: localJobMeta(),
    signal: new AbortController().signal,
    onProgress: async () => undefined,
    log: () => undefined,
  };
}
