import { NotFoundError, type ColumnOverrides, type DatasetInfo, type TableProfile, type Task } from '@tq/contracts';

/** What DatasetStore takes and answers (dataset-store.ts). */
export type DatasetFormat = 'csv' | 'jsonl';

/** What an upload says about its file; decided by the form fields, known (at latest) when the file has been stored. */
export interface DatasetMeta {
  name: string;
  format: DatasetFormat;
  labelColumn?: string | undefined;
  columns?: ColumnOverrides | undefined;
  task?: Task | undefined;
  featureColumns?: string[] | undefined;
  /** The profiling job's id, when the caller chose it before enqueueing. */
  jobId?: string | undefined;
}

/** What a profiling job found: the dataset becomes `ready`. */
export interface DatasetProfiled {
  profile: TableProfile;
  rows: number;
  featureColumns: string[];
  classes: string[];
  task?: Task | undefined;
}

/** The 4xx a file earned (its field names row and column): the dataset becomes `failed`. */
export interface DatasetFailure {
  field: string;
  message: string;
  status: number;
}

export class DatasetNotFoundError extends NotFoundError {
  constructor(
    readonly id: string,
    field = 'dataset.id',
  ) {
    super(field, `dataset "${id}" does not exist`);
  }
}

/**
 * How a profiling → ready | failed transition went. `won` is false when another writer (the API
 * marking a lost or cancelled job, a second attempt of the job) settled the dataset first; `info`
 * is the dataset as the winner left it, either way.
 */
export interface DatasetSettled {
  won: boolean;
  info: DatasetInfo;
}
