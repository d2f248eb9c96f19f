import type { Readable } from 'node:stream';
import {
  ConflictError,
  FieldError,
  TooLargeError,
  type ColumnOverrides,
  type DatasetInfo,
  type ModelRef,
  type PreprocessingSpec,
  type TableProfile,
  type TrainRequest,
} from '@tq/contracts';
import { loadBuiltinDataset, readPreprocessing, type TabularData } from '@tq/ml';
import { prepareTable, type PreparedTable } from './prepare';
import { profileTable } from './profile';
import { readTable } from './read-table';
import type { TableLimits } from './limits';
import { watchTable, type TableFormat, type TableSource, type TableWatch } from './table-source';

/** The stored-table calls training needs (DatasetStore's API): its record and its source bytes. */
export interface TableDatasets {
  get(id: string): Promise<DatasetInfo>;
  /** The upload as it came. */
  openSource(id: string): Promise<{ format: TableFormat; stream: Readable }>;
}

/** A registered version's record and artifacts (ModelRegistry), for its preprocessing.json. */
export type VersionArtifacts = Parameters<typeof readPreprocessing>[0];

export interface TrainingDataSources {
  datasets?: TableDatasets | undefined;
  /** Fine-tuning (`model.from`): where the version's preprocessing.json is read. */
  registry?: VersionArtifacts | undefined;
  /** Reader bounds from @tq/config. */
  tableLimits?: Partial<TableLimits> | undefined;
  /** Checked between batches of every pass over the table: an abort throws its reason. */
  signal?: AbortSignal | undefined;
  /** The share (0..1) of the table's reads done: it is read 2-4 times (profile, split, fit, encode). */
  onLoading?: ((fraction: number) => void | Promise<void>) | undefined;
}

export type TrainingDataRequest = Pick<TrainRequest, 'dataset' | 'fit' | 'task' | 'columns' | 'impute' | 'model'>;

/**
 * The rows a train request learns from, the same in every process that asks (the train job, the
 * coordinator, every shard and the aggregator of a data-parallel run): a built-in dataset, or an
 * uploaded table prepared by prepareTable (seeded split, preprocessing fitted on the training
 * rows, or the fine-tuned version's preprocessing.json reused as it is). Bad input is a 4xx:
 * a table still profiling is 409 naming `dataset.id`, one that failed is its stored error.
 */
export async function loadTrainingData(req: TrainingDataRequest, src: TrainingDataSources): Promise<TabularData> {
  if ('builtin' in req.dataset) return loadBuiltinDataset(req.dataset.builtin);
  const id = req.dataset.id;
  // A wiring fault of the process, not the client's input.
  if (!src.datasets) throw new Error('an uploaded dataset needs a DatasetStore');
  const info = await src.datasets.get(id);
  checkUsable(info);
  // checkUsable let only a ready dataset through, and a ready one has its profile.
  if (!info.profile) throw new Error(`dataset ${id} is ready but has no profile`);
  const store = src.datasets;
  const spec = req.model.from ? await versionPreprocessing(req.model.from, src.registry) : undefined;
  const passes = (needsNewProfile(info, info.profile, req) ? 1 : 0) + (spec ? 2 : 3);
  const watch = loadingWatch(src, info.rows * passes);
  const counter = { rows: 0 };
  const open = async (): Promise<TableSource> => {
    const { format, stream } = await store.openSource(id);
    return watchTable(await readTable(stream, format, src.tableLimits ?? {}), watch, counter);
  };
  const profile = await trainingProfile(info, info.profile, req, open);
  const prepared = await prepareTable(open, {
    profile,
    validationSplit: req.fit.validationSplit,
    seed: req.fit.seed,
    impute: req.impute,
    ...(spec ? { spec } : {}),
  });
  return tabularOf(prepared);
}

/** 409 while profiling; a failed profile's own 4xx (its field names the row and column). */
export function checkUsable(info: DatasetInfo): void {
  if (info.status === 'profiling')
    throw new ConflictError('dataset.id', `dataset "${info.id}" is still being profiled (job ${info.jobId ?? '?'})`);
  if (info.status === 'failed') {
    const e = info.error ?? { field: 'file', message: 'profiling failed', status: 400 };
    const message = `dataset "${info.id}" could not be read: ${e.field}: ${e.message}`;
    throw e.status === 413 ? new TooLargeError('dataset.id', message) : new FieldError('dataset.id', message);
  }
  if (info.format !== 'builtin' && info.labelColumn === null)
    throw new FieldError('dataset.id', `dataset "${info.id}" has no label column (upload it with labelColumn)`);
  // Batch inference reports such rows one by one; training reads every row.
  const malformed = info.profile?.malformedRows;
  if (malformed)
    throw new FieldError(
      'dataset.id',
      `dataset "${info.id}" has ${malformed.count} row${malformed.count === 1 ? '' : 's'} that cannot be read ` +
        `(the first: row ${malformed.first.row}, ${malformed.first.message}); training reads every row: fix the file`,
    );
}

/**
 * The stored profile, or a new one when the request's task or column overrides change it: the
 * upload's overrides (and the columns it ignored) stay, the request's go on top.
 */
async function trainingProfile(
  info: DatasetInfo,
  stored: TableProfile,
  req: TrainingDataRequest,
  open: () => Promise<TableSource>,
): Promise<TableProfile> {
  if (!needsNewProfile(info, stored, req)) return stored;
  const userDropped = stored.columns.filter((c) => c.overridden && c.dropped !== undefined);
  // Spread and fromEntries define own keys: assigning "__proto__" would set the prototype instead.
  const overrides: ColumnOverrides = {
    ...info.columns,
    ...Object.fromEntries(userDropped.map((c) => [c.name, 'ignore' as const])),
    ...req.columns,
  };
  const unknown = Object.keys(req.columns ?? {}).find((name) => !stored.columns.some((c) => c.name === name));
  if (unknown !== undefined) throw new FieldError(`columns.${unknown}`, 'no such column in the dataset');
  const task = req.task ?? info.task;
  try {
    return await profileTable(await open(), { label: info.labelColumn!, overrides, ...(task ? { task } : {}) });
  } catch (err) {
    // profileTable names the upload's fields; here they are the train request's.
    if (err instanceof FieldError && err.field === 'label') throw new FieldError('dataset.id', err.reason);
    throw err;
  }
}

/** Whether the request's task or column overrides differ from the upload's. */
function needsNewProfile(info: DatasetInfo, stored: TableProfile, req: TrainingDataRequest): boolean {
  const taskChanged = req.task !== undefined && req.task !== stored.label?.task;
  return taskChanged || Object.entries(req.columns ?? {}).some(([name, kind]) => info.columns?.[name] !== kind);
}

/** Progress at most every 250 ms (each report is a Redis write), and cancellation, over `total` row reads. */
function loadingWatch(src: TrainingDataSources, total: number): TableWatch {
  let last = 0;
  const report = src.onLoading;
  return {
    signal: src.signal,
    onRows: report
      ? (rows) => {
          if (Date.now() - last < 250) return;
          last = Date.now();
          return report(Math.min(1, rows / Math.max(1, total)));
        }
      : undefined,
  };
}

/** The fine-tuned version's preprocessing.json (readPreprocessing); undefined for one trained on matrices. */
function versionPreprocessing(
  ref: ModelRef,
  registry: VersionArtifacts | undefined,
): Promise<PreprocessingSpec | undefined> {
  if (!registry) throw new Error('fine-tuning on a table needs the model registry');
  return readPreprocessing(registry, ref);
}

/** Training rows then validation rows, as one TabularData whose last `validationRows` are held out. */
export function tabularOf(p: PreparedTable): TabularData {
  const { spec, train, validation } = p;
  const rows = train.rows + validation.rows;
  const x = adjacent(train.features, validation.features) ?? new Float32Array(rows * spec.width);
  if (x.buffer !== train.features.buffer) {
    x.set(train.features, 0);
    x.set(validation.features, train.features.length);
  }
  const classification = spec.target.task === 'classification';
  const y = classification ? new Int32Array(rows) : new Float32Array(rows);
  y.set(train.targets, 0);
  y.set(validation.targets, train.rows);
  return {
    x,
    y,
    rows,
    featureCount: spec.width,
    inputShape: [spec.width],
    task: spec.target.task,
    classes: spec.target.task === 'classification' ? spec.target.classes : [],
    validationRows: validation.rows,
    preprocessing: spec,
    featureColumns: spec.steps.map((s) => s.name),
    labelColumn: spec.target.column,
  };
}

/** `a` then `b` as one array without a copy when they are back to back in one buffer (prepareTable's). */
function adjacent(a: Float32Array, b: Float32Array): Float32Array | undefined {
  if (a.buffer !== b.buffer || a.byteOffset + a.byteLength !== b.byteOffset) return undefined;
  return new Float32Array(a.buffer, a.byteOffset, a.length + b.length);
}
