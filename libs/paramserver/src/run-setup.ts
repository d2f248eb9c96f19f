import type * as tf from '@tensorflow/tfjs';
import { FieldError, type DistributedSpec, type Lineage, type TrainRequest } from '@tq/contracts';
import {
  checkModelFitsData,
  checkMonitor,
  lossSpecOf,
  sliceRows,
  startingModel,
  trainRowCount,
  type LossSpec,
  type DataShape,
  type TabularData,
} from '@tq/ml';
import { ModelRegistry, type ArtifactStore } from '@tq/storage';
import { loadTrainingData } from '@tq/tables';
import { makePlan, type RunPlan } from './data-order';
import type { RunSources } from './deps';

/** The request's "distributed" section; a FieldError (bad input, never retried) when it has none. */
export function requireDistributed(request: TrainRequest): DistributedSpec {
  if (!request.distributed) throw new FieldError('distributed', 'required for a data-parallel run');
  return request.distributed;
}

/**
 * The run's rows: @tq/tables' loadTrainingData, deterministic (seeded split, preprocessing fitted
 * on the same training rows), so every process of the run holds the same spec and matrices.
 */
export async function loadRunData(
  request: TrainRequest,
  src: RunSources & { store?: ArtifactStore },
): Promise<TabularData> {
  if (src.loadDataset) return src.loadDataset(request.dataset);
  return loadTrainingData(request, {
    datasets: src.datasets,
    registry: runRegistry(src),
    tableLimits: src.tableLimits,
  });
}

function runRegistry(src: RunSources & { store?: ArtifactStore }): ModelRegistry | undefined {
  return src.registry ?? (src.store ? new ModelRegistry(src.store) : undefined);
}

/**
 * The run's starting model (@tq/ml's startingModel: every process builds the same one). The worker
 * app gives the aggregator and the shards only the store: fine-tuning's registry is made from it.
 */
export function runStartingModel(
  request: TrainRequest,
  src: RunSources & { store?: ArtifactStore },
  jobId: string,
  data?: DataShape,
): Promise<{ model: tf.LayersModel; lineage: Lineage }> {
  return startingModel(request, runRegistry(src), jobId, data);
}

export interface RunData {
  plan: RunPlan;
  /** The training rows (a prepared table's own split, else Keras's: the last fraction, before shuffling, is held out). */
  train: TabularData;
  validation: TabularData | undefined;
  /** What every shard minimises (and the aggregator evaluates): the same for all, from the same rows. */
  loss: LossSpec;
}

/** Bad input (a model that does not fit the data, no training rows) throws a FieldError naming the field. */
export function splitRunData(request: TrainRequest, data: TabularData, model: tf.LayersModel): RunData {
  const spec = requireDistributed(request);
  checkModelFitsData(model, data, request.model.from ? 'model.from' : 'model.layers');
  const split = trainRowCount(data, request.fit.validationSplit);
  if (split === 0) throw new FieldError('fit.validationSplit', `leaves no training rows out of ${data.rows}`);
  // The aggregator's epoch entries hold what trainModel's do (loss from the shards, val* its own).
  if (request.fit.earlyStopping) checkMonitor(request.fit.earlyStopping, data.task, split < data.rows);
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
    loss: lossSpecOf(data, request.fit, split),
  };
}
