import { Transform, pipeline, type TransformCallback } from 'node:stream';
import {
  CancelledError,
  ConflictError,
  FieldError,
  TqError,
  throwIfCancelled,
  type ColumnOverrides,
  type DatasetInfo,
  type FieldIssue,
  type JobHooks,
  type ProfileDatasetJobData,
  type ProfileDatasetProgress,
  type ProfileDatasetResult,
  type TableProfile,
} from '@tq/contracts';
import {
  at,
  isMissing,
  overrideOf,
  profileTable,
  malformedReason,
  readTable,
  toBoolean,
  toDays,
  toNumber,
  type Cell,
  type TableLimits,
  type TableSource,
} from '@tq/tables';
import type { DatasetFailure, DatasetSettled, DatasetStore } from '@tq/storage';
import { ROW_INDEX_FILE, RowIndexBuilder } from './row-index';

export interface ProfileDatasetDeps {
  datasets: DatasetStore;
  /** From configuration (MAX_TABLE_COLUMNS, MAX_TABLE_ROWS, MAX_TABLE_RECORD_BYTES). */
  limits: TableLimits;
  /**
   * INFER_SHARD_ROWS: a CSV's or JSON Lines table's row index records where every this-many-th row
   * starts (infer jobs shard by it). Absent: no index (the table is then inferred as one shard).
   */
  shardRows?: number;
}

/** Progress is reported at most this often (a Redis write each). */
const PROGRESS_EVERY_MS = 500;

/**
 * Reads an uploaded table once (csv-parse / JSON lines, bounded memory), profiles it and marks the
 * dataset ready. A bad file (FieldError / TooLargeError naming row, column or field) marks it
 * failed with that error, which the upload answers with; the error is rethrown, so the job fails
 * without a retry. A cancel between batches marks it failed too. The first writer to settle the
 * dataset wins (DatasetStore.markReady/markFailed): when the API settled it first, the job ends
 * with what the API stored (endedBy).
 */
export async function profileDatasetJob(
  data: ProfileDatasetJobData,
  deps: ProfileDatasetDeps,
  hooks: JobHooks<ProfileDatasetProgress>,
): Promise<ProfileDatasetResult> {
  const before = await deps.datasets.get(data.datasetId);
  if (before.status !== 'profiling') return endedBy(before); // settled while the job waited
  let outcome: DatasetSettled;
  try {
    const profile = await profileSource(data, deps, hooks);
    const classes = profile.label?.task === 'classification' ? profile.label.classes.map((c) => c.value).sort() : [];
    const featureColumns = profile.columns
      .filter((c) => c.dropped === undefined && c.name !== data.labelColumn)
      .map((c) => c.name);
    outcome = await deps.datasets.markReady(data.datasetId, {
      profile,
      rows: profile.rows,
      featureColumns,
      classes,
      task: profile.label?.task,
    });
  } catch (err) {
    const failure = failureOf(err);
    // Lost to an earlier writer or not, the job fails with its own error (never retried).
    if (failure) await deps.datasets.markFailed(data.datasetId, failure);
    throw renamed(err);
  }
  return outcome.won ? { datasetId: data.datasetId, rows: outcome.info.rows } : endedBy(outcome.info);
}

/**
 * The dataset was settled by another writer first (the API marking a cancelled or lost job
 * failed, or an earlier attempt of this job): the job ends with what that writer stored, so its
 * result and the dataset agree. Ready: the job completes with the stored row count. Failed: the
 * job fails with a ConflictError carrying the stored error (a TqError, so it is not retried).
 */
function endedBy(info: DatasetInfo): ProfileDatasetResult {
  if (info.status === 'ready') return { datasetId: info.id, rows: info.rows };
  const why = info.error ? `${info.error.field}: ${info.error.message}` : 'no error stored';
  throw new ConflictError('id', `dataset "${info.id}" was marked ${info.status} first (${why})`);
}

/** After a last attempt failed for a fault that is not the file's (the worker's, the disk's): say so. */
export async function profileDatasetCleanup(data: ProfileDatasetJobData, datasets: DatasetStore): Promise<void> {
  const info = await datasets.get(data.datasetId);
  if (info.status !== 'profiling') return;
  await datasets.markFailed(data.datasetId, {
    field: 'file',
    message: 'profiling failed for an internal reason (see the job); upload the file again',
    status: 500,
  });
}

async function profileSource(
  data: ProfileDatasetJobData,
  deps: ProfileDatasetDeps,
  hooks: JobHooks<ProfileDatasetProgress>,
): Promise<TableProfile> {
  const info = await deps.datasets.get(data.datasetId);
  const { format, stream } = await deps.datasets.openSource(data.datasetId);
  const counted = new ByteCount();
  // pipeline passes a read error on to the reader (and closes the file when the reader stops early).
  pipeline(stream, counted, () => undefined);
  const index = deps.shardRows ? new RowIndexBuilder(deps.shardRows) : undefined;
  // Malformed rows are counted in the profile, not the end of it: a batch infer reports them per row.
  const table = await readTable(counted, format, deps.limits, {
    keepMalformedRows: true,
    ...(index ? { onRecordEnd: index.onRecordEnd } : {}),
  });
  const overrides = overridesOf(data, table.columns);
  const watched = watchBatches(table, overrides, hooks, (rows) => ({
    stage: 'reading',
    percent: info.bytes > 0 ? Math.min(100, (100 * counted.bytes) / info.bytes) : 100,
    rows,
  }));
  const profile = await profileTable(watched, {
    ...(data.labelColumn === undefined ? {} : { label: data.labelColumn }),
    ...(data.task === undefined ? {} : { task: data.task }),
    overrides,
  });
  // Written before the dataset is marked ready: a ready table has its index (or was profiled before
  // them). An index that does not count the profile's rows is not one: a JSON array reports no records.
  const built = index?.build(format === 'jsonl' ? table.columns : undefined);
  if (built && built.rows === profile.rows)
    await deps.datasets.writeExtra(data.datasetId, ROW_INDEX_FILE, JSON.stringify(built));
  const decimalCommas = table.decimalCommas?.() ?? 0;
  return {
    ...profile,
    ...(table.delimiter === undefined ? {} : { delimiter: table.delimiter }),
    ...(decimalCommas > 0 ? { decimalCommas } : {}),
  };
}

/** Upload overrides, plus "ignore" for every column outside `featureColumns` (the label excepted). */
function overridesOf(data: ProfileDatasetJobData, columns: readonly string[]): ColumnOverrides {
  const overrides: ColumnOverrides = { ...data.columns };
  if (!data.featureColumns) return overrides;
  const unknown = data.featureColumns.filter((name) => !columns.includes(name));
  if (unknown.length > 0)
    throw new FieldError('featureColumns', `no column ${unknown.map((n) => `"${n}"`).join(', ')} in the table`);
  if (!data.featureColumns.some((name) => name !== data.labelColumn))
    throw new FieldError('featureColumns', 'names no feature column (the label aside): every column would be ignored');
  const outside = columns.filter(
    (name) =>
      name !== data.labelColumn && !data.featureColumns!.includes(name) && overrideOf(overrides, name) === undefined,
  );
  // fromEntries and spread define own keys: an assignment to "__proto__" would set the prototype instead.
  return { ...overrides, ...Object.fromEntries(outside.map((name) => [name, 'ignore' as const])) };
}

/**
 * The table's batches, with between each: the cancel check, progress, and the cells of columns
 * forced to a kind checked against it (the profile would otherwise accept "abc" in a column the
 * user declared numeric, and the error would surface only at training).
 */
function watchBatches(
  table: TableSource,
  overrides: ColumnOverrides,
  hooks: JobHooks<ProfileDatasetProgress>,
  progress: (rows: number) => ProfileDatasetProgress,
): TableSource {
  const forced = table.columns.flatMap((name, k) => {
    const kind = overrideOf(overrides, name);
    const parse = kind === undefined || kind === 'ignore' || kind === 'categorical' ? undefined : PARSERS[kind];
    return parse ? [{ name, k, kind, parse }] : [];
  });
  async function* batches(): AsyncGenerator<Cell[][]> {
    let rows = 0;
    let reported = Date.now();
    for await (const batch of table.batches) {
      throwIfCancelled(hooks.signal);
      for (const cells of batch) {
        rows++;
        if (malformedReason(cells, table.columns.length) !== undefined) continue;
        for (const f of forced) {
          const cell = cells[f.k] ?? null;
          if (!isMissing(cell) && !f.parse(cell))
            throw new FieldError(
              at(rows, f.name),
              `${JSON.stringify(cell)} is not ${f.kind} (the column is forced ${f.kind})`,
            );
        }
      }
      if (Date.now() - reported >= PROGRESS_EVERY_MS) {
        reported = Date.now();
        await hooks.onProgress(progress(rows));
      }
      yield batch;
    }
    await hooks.onProgress({ ...progress(rows), percent: 100 });
  }
  return { columns: table.columns, batches: batches() };
}

const PARSERS: Record<'numeric' | 'boolean' | 'datetime', (cell: Cell) => boolean> = {
  numeric: (cell) => !Number.isNaN(toNumber(cell)),
  boolean: (cell) => toBoolean(cell) !== undefined,
  datetime: (cell) => !Number.isNaN(toDays(cell)),
};

/** The profile's "label" is the upload's `labelColumn` field: errors name what the user sent. */
function renamed(err: unknown): unknown {
  if (!(err instanceof FieldError) || !err.issues.some((i) => i.field === 'label')) return err;
  const issues = err.issues.map((i) => (i.field === 'label' ? { ...i, field: 'labelColumn' } : i));
  // FieldError and TooLargeError (the ones the profile throws) take their issues as the only argument.
  return new (err.constructor as new (issues: readonly FieldIssue[]) => FieldError)(issues);
}

function failureOf(err: unknown): DatasetFailure | undefined {
  if (err instanceof CancelledError) return { field: 'id', message: 'profiling was cancelled', status: 409 };
  const named = renamed(err);
  if (named instanceof FieldError) return { field: named.field, message: named.reason, status: named.status };
  if (named instanceof TqError) return { field: 'file', message: named.message, status: named.status };
  return undefined; // a fault of the worker, not the file: retried (profileDatasetCleanup after the last try)
}

/** Counts the bytes the reader has taken from the file, for progress. */
class ByteCount extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}
