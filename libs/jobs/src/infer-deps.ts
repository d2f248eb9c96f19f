import { FieldError } from '@tq/contracts';
import type { BackendInfo, InferenceEngine } from '@tq/ml';
import type { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';
import type { TableLimits } from '@tq/tables';
import type { ShardQueue } from './infer-shards';

/** What an infer job (inline rows or a table's shards) runs with. */
export interface InferDeps {
  engine: InferenceEngine;
  registry: ModelRegistry;
  datasets: Pick<DatasetStore, 'get' | 'openSource' | 'readExtra'>;
  inputs: JobInputStore;
  store: ArtifactStore;
  backend: BackendInfo;
  /** Bounds on an uploaded table read for inference (@tq/config; the tables defaults when absent). */
  tableLimits?: Partial<TableLimits>;
  /** A table's shards run as child jobs there; absent (tests, benches): one after another in this process. */
  shards?: ShardQueue;
  /** A request's error budget when it sets none (INFER_MAX_ERRORS; default 1,000). */
  maxErrors?: number;
}

/** A request whose rows do not fit the model: unrecoverable, and it names the field. */
export class InputShapeError extends FieldError {}
