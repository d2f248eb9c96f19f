import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { AggregateResult, ModelVersionMeta, TrainJobData, TrainResult } from '@tq/contracts';
import { exportOnnx } from '@tq/ml';
import { fileSaveHandler } from '@tq/storage';
import { loadCheckpointWeights } from './aggregator-state';
import type { CoordinatorDeps } from './coordinator';
import { loadRunData, splitRunData, startingModel } from './run-setup';

/** Fails on bad input (a model that does not fit the data, no training rows) before anything is enqueued. */
export async function checkRun(request: TrainJobData, deps: CoordinatorDeps, parentJobId: string): Promise<void> {
  const data = await loadRunData(request, deps);
  const { model } = await startingModel(request, deps, parentJobId);
  try {
    splitRunData(request, data, model);
  } finally {
    model.dispose();
  }
}

/** Registers ONE version from the aggregator's final weights (lineage: trained or fine-tuned by the train job). */
export async function registerRun(
  deps: CoordinatorDeps, request: TrainJobData, parentJobId: string, outcome: AggregateResult, finalPath: string, backend: string,
): Promise<ModelVersionMeta> {
  const data = await loadRunData(request, deps);
  const { model, lineage } = await startingModel(request, deps, parentJobId);
  try {
    await loadCheckpointWeights(finalPath, model);
    return await deps.registry.register(request.model.name, {
      inputShape: data.inputShape, featureCount: data.featureCount, classes: data.classes, layers: request.model.layers,
      metrics: outcome.metrics ?? { loss: Number.NaN }, history: outcome.history, lineage, backend, weightDtype: 'float32',
    }, (dir) => (deps.writeArtifacts ?? defaultArtifacts)(model, dir));
  } finally {
    model.dispose();
  }
}

/** tfjs files and, when the model can be expressed, an ONNX export (as the local train runner writes). */
async function defaultArtifacts(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileSaveHandler(dir));
  try {
    await writeFile(join(dir, 'model.onnx'), exportOnnx(model));
  } catch {
    // A model ONNX cannot express is still served by tfjs.
  }
}

export function resultOfVersion(meta: ModelVersionMeta, backend: string, outcome: AggregateResult | undefined, spec?: { workers: number; mode: string }): TrainResult {
  return {
    model: { name: meta.name, version: meta.version },
    metrics: { loss: meta.metrics?.loss ?? Number.NaN, ...meta.metrics },
    epochs: meta.history?.length ?? 0,
    samplesPerSec: outcome?.samplesPerSec ?? 0,
    backend,
    ...(outcome && spec ? { distributed: { workers: spec.workers, mode: spec.mode, steps: outcome.steps, droppedStale: outcome.droppedStale } } : {}),
  };
}
