import {
  BUILTIN_DATASETS,
  ConflictError,
  TooLargeError,
  FieldError,
  fitSchema,
  GoneError,
  NotFoundError,
  type DatasetRef,
  type ModelVersionMeta,
  type TrainRequest,
} from '@tq/contracts';
import { sliceRows, trainRowCount, type TabularData } from '@tq/ml';
import { loadTrainingData, type TableLimits, type TrainingDataSources } from '@tq/tables';
import type { ModelRegistry } from '@tq/storage';

/** The split train uses by default: what a version trained before lineage.training existed was most likely split with. */
const DEFAULT_FIT = fitSchema.parse({});

export interface SourceData {
  /** Training rows then held-out rows, preprocessed as the source was. */
  data: TabularData;
  /** Absent when the source was trained with validationSplit 0: nothing to evaluate on. */
  heldOut?: TabularData;
  trainRows: number;
  split: { validationSplit: number; seed: number; recorded: boolean };
}

/**
 * The train request fields that read the source's rows as it was trained on them: its dataset, a
 * table's task, column overrides and imputation, its split (lineage.training; train's defaults for a
 * version that predates the record) and `model.from` the source (its own preprocessing.json).
 * Undefined when the version records no dataset.
 */
export function sourceRowsRequest(meta: ModelVersionMeta): Omit<TrainRequest, 'distributed'> | undefined {
  const dataset = meta.lineage.dataset;
  const builtin = BUILTIN_DATASETS.find((name) => name === dataset?.builtin);
  const ref: DatasetRef | undefined = builtin ? { builtin } : dataset?.id ? { id: dataset.id } : undefined;
  if (!ref) return undefined;
  const training = meta.lineage.training;
  return {
    dataset: ref,
    fit: {
      ...DEFAULT_FIT,
      validationSplit: training?.validationSplit ?? DEFAULT_FIT.validationSplit,
      seed: training?.seed ?? DEFAULT_FIT.seed,
    },
    impute: training?.impute ?? 'mean',
    ...(training?.task ? { task: training.task } : {}),
    ...(training?.columns ? { columns: training.columns } : {}),
    model: { name: meta.name, from: { name: meta.name, version: meta.version } },
  };
}

/**
 * The rows the source was trained on, split as its training split them (lineage.training: the
 * validationSplit and seed, and a table's task, column overrides and imputation; train's defaults
 * for a version that predates the record), a table's read with the source's own preprocessing.json.
 * A dataset that is gone is a GoneError naming `source` (no retry brings it back); undefined when
 * the version records no dataset.
 */
export async function loadSourceData(
  meta: ModelVersionMeta,
  deps: { registry: ModelRegistry; datasets: TrainingDataSources['datasets']; tableLimits?: Partial<TableLimits> },
  signal: AbortSignal,
): Promise<SourceData | undefined> {
  const rows = sourceRowsRequest(meta);
  if (!rows) return undefined;
  const ref = rows.dataset;
  const split = {
    validationSplit: rows.fit.validationSplit,
    seed: rows.fit.seed,
    recorded: meta.lineage.training !== undefined,
  };
  let data: TabularData;
  try {
    data = await loadTrainingData(rows, {
      datasets: deps.datasets,
      registry: deps.registry,
      tableLimits: deps.tableLimits,
      signal,
    });
  } catch (err) {
    if (!(err instanceof FieldError) || !('id' in ref)) throw err;
    if (err instanceof NotFoundError)
      throw new GoneError(
        'source',
        `the dataset "${ref.id}" ${meta.name} v${meta.version} was trained on is gone: its held-out rows cannot be evaluated on`,
      );
    // The upload's own fault (still profiling, failed, no label): named as the compress request's field.
    const message = `the dataset "${ref.id}" ${meta.name} v${meta.version} was trained on does not load: ${err.message}`;
    if (err instanceof ConflictError) throw new ConflictError('source', message);
    if (err instanceof TooLargeError) throw new TooLargeError('source', message);
    throw new FieldError('source', message);
  }
  const trainRows = trainRowCount(data, split.validationSplit);
  const heldOut = trainRows < data.rows ? sliceRows(data, trainRows, data.rows) : undefined;
  return { data, ...(heldOut ? { heldOut } : {}), trainRows, split };
}
