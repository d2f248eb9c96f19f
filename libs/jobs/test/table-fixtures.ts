import { createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { datasetInfoSchema, type ColumnOverrides, type DatasetInfo, type Task } from '@tq/contracts';
import { DatasetNotFoundError } from '@tq/storage';
import { profileTable, readTable, type TableDatasets, type TableFormat } from '@tq/tables';
import { jsonlStream, type PublicJson } from '../../tables/test/public-tables';

export type PublicTable = PublicJson | 'seattle-weather';

const DATA = join(dirname(require.resolve('vega-datasets')), '..', 'data');

/** A public table's bytes as an upload would store them: cars / penguins as JSONL, seattle-weather as its CSV. */
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

/**
 * DatasetStore's table calls (get, openSource) over public tables, each profiled here as the
 * profiling job would: the stand-in until the store keeps uploads as they came (helper A's branch).
 * `status` lets a test see a table still profiling or failed.
 */
export async function publicTableDatasets(
  uploads: Record<string, TableUpload>,
  status: Record<string, Pick<DatasetInfo, 'status' | 'error'>> = {},
): Promise<TableDatasets> {
  const infos = new Map<string, DatasetInfo>();
  for (const [id, u] of Object.entries(uploads)) {
    const { format, stream } = sourceOf(u.table);
    const profile = await profileTable(await readTable(stream, format), {
      label: u.labelColumn,
      ...(u.task ? { task: u.task } : {}),
      ...(u.columns ? { overrides: u.columns } : {}),
    });
    const label = profile.label!;
    infos.set(
      id,
      datasetInfoSchema.parse({
        id,
        name: u.table,
        format,
        status: 'ready',
        rows: profile.rows,
        featureColumns: profile.columns.filter((c) => !c.dropped && c.name !== u.labelColumn).map((c) => c.name),
        labelColumn: u.labelColumn,
        classes: label.task === 'classification' ? label.classes.map((c) => c.value) : [],
        task: label.task,
        ...(u.columns ? { columns: u.columns } : {}),
        profile,
        createdAt: new Date().toISOString(),
        bytes: 0,
        ...status[id],
      }),
    );
  }
  const info = (id: string): DatasetInfo => {
    const found = infos.get(id);
    if (!found) throw new DatasetNotFoundError(id);
    return found;
  };
  return {
    get: async (id) => info(id),
    openSource: async (id) => sourceOf(uploads[info(id).id]!.table),
  };
}
