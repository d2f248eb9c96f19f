import type * as tf from '@tensorflow/tfjs';
import type { LayerSpec, Lineage, TrainRequest } from '@tq/contracts';
import type { TabularData } from '../data/tabular-data';
import type { ModelRegistry } from '@tq/storage';
import { buildModel } from './build-model';
import { withInputShape } from './check-classifier';
import { loadModelVersion } from './model-io';

/** What of a train request decides the model it starts from. */
export type StartingModelRequest = Pick<TrainRequest, 'model' | 'dataset' | 'fit'> &
  Partial<Pick<TrainRequest, 'task' | 'columns' | 'impute'>>;

/**
 * The model a train job starts from and the lineage its version will record: the registered
 * version it fine-tunes (`model.from`), or a fresh one built from `model.layers` with the fit
 * seed. Same seed, same initial weights: every process of a distributed run builds the same model.
 * The caller owns the model and disposes it.
 */
export async function startingModel(
  req: StartingModelRequest,
  registry: ModelRegistry | undefined,
  jobId: string,
  data?: Pick<TabularData, 'task' | 'featureCount' | 'preprocessing'>,
): Promise<{ model: tf.LayersModel; lineage: Lineage }> {
  const dataset = 'builtin' in req.dataset ? { builtin: req.dataset.builtin } : { id: req.dataset.id };
  const training = trainingSplit(req);
  if (req.model.from) {
    // A wiring fault, not bad input: every process that fine-tunes is given the registry.
    if (!registry) throw new Error('fine-tuning needs the model registry');
    const { model } = await loadModelVersion(registry, req.model.from);
    return { model, lineage: { kind: 'fine-tuned', jobId, dataset, training, parent: req.model.from } };
  }
  const model = buildModel(modelLayers(req, data), { seed: req.fit.seed, task: data?.task ?? 'classification' });
  return { model, lineage: { kind: 'trained', jobId, dataset, training } };
}

/**
 * The layers a new model is built from: a table's may leave the first inputShape out (filled with
 * the preprocessed width, also in the registered version's `layers`).
 */
export function modelLayers(
  req: Pick<TrainRequest, 'model'>,
  data?: Pick<TabularData, 'featureCount' | 'preprocessing'>,
): LayerSpec[] {
  const layers = req.model.layers ?? [];
  return data?.preprocessing ? withInputShape(layers, data.featureCount) : layers;
}

/** What decides a run's held-out rows (lineage.training): compression evaluates on the same ones. */
export function trainingSplit(req: StartingModelRequest): NonNullable<Lineage['training']> {
  const table = 'id' in req.dataset;
  return {
    validationSplit: req.fit.validationSplit,
    seed: req.fit.seed,
    ...(table && req.task ? { task: req.task } : {}),
    ...(table && req.columns ? { columns: req.columns } : {}),
    ...(table && req.impute ? { impute: req.impute } : {}),
  };
}
