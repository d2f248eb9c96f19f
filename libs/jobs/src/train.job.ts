import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { throwIfCancelled, type JobHooks, type Lineage, type ModelVersionMeta, type TrainJobData, type TrainProgress, type TrainResult } from '@tq/contracts';
import { checkBudgets, exportOnnx, fileCheckpoint, loadModelVersion, buildModel, resolveDataset, trainModel, type BackendInfo, type Budgets } from '@tq/ml';
import { coordinateDistributedTraining } from '@tq/paramserver';
import { fileSaveHandler, type ArtifactStore, type DatasetStore, type ModelRegistry } from '@tq/storage';

export interface TrainDeps {
  registry: ModelRegistry; datasets: DatasetStore; store: ArtifactStore; backend: BackendInfo;
  /** The same budgets the API checks at submission, checked again before anything is allocated. */
  budgets: Budgets;
}
/** A data-parallel run also needs Redis (the parameter server's channel) and the child queues. */
export interface DistributedTrainDeps extends TrainDeps { redis: Redis; aggregateQueue: Queue; shardQueue: Queue }

/** The train job: local training, or the coordinator of a data-parallel run when `distributed` is set. */
export async function trainJob(data: TrainJobData, deps: DistributedTrainDeps, hooks: JobHooks<TrainProgress>): Promise<TrainResult> {
  if (!data.distributed) return runTraining(data, deps, hooks);
  if (data.model.layers) checkBudgets({ layers: { spec: data.model.layers, field: 'model.layers' } }, deps.budgets);
  const job = { id: hooks.jobId, data } as Parameters<typeof coordinateDistributedTraining>[0];
  return coordinateDistributedTraining(job, {
    ...deps, jobId: hooks.jobId, meta: hooks.meta, onProgress: hooks.onProgress, shouldStop: () => hooks.signal.aborted, log: hooks.log,
  });
}

/**
 * One training job: data → model (new or fine-tuned) → epochs with checkpoints → one registered
 * version holding model.json, weights.bin and model.onnx, written atomically. Re-running the same
 * job id after a crash returns the version it already registered instead of adding a second one.
 * Cancellation is honoured between stages and between batches.
 */
export async function runTraining(req: TrainJobData, deps: TrainDeps, hooks: JobHooks<TrainProgress>): Promise<TrainResult> {
  const done = await findVersionOfJob(deps.registry, req.model.name, hooks.jobId);
  if (done) return resultOf(done, deps.backend);
  await hooks.onProgress({ stage: 'loading', percent: 0 });
  const data = await resolveDataset(req.dataset, deps.datasets);
  const layers = req.model.layers ? { layers: { spec: req.model.layers, field: 'model.layers' } } : {};
  checkBudgets({ ...layers, train: { rows: data.rows, epochs: req.fit.epochs } }, deps.budgets);
  throwIfCancelled(hooks.signal);
  const { model, lineage } = await startingModel(req, deps.registry, hooks.jobId);
  try {
    throwIfCancelled(hooks.signal);
    const checkpoint = fileCheckpoint(deps.store, `train-${hooks.jobId}`);
    const trained = await trainModel({
      model, data, fit: req.fit, onProgress: hooks.onProgress, shouldStop: () => hooks.signal.aborted, checkpoint,
      modelField: req.model.from ? 'model.from' : 'model.layers',
    });
    await hooks.onProgress({ stage: 'saving', percent: 100, epoch: trained.epochs, epochs: req.fit.epochs });
    throwIfCancelled(hooks.signal);
    const meta = await deps.registry.register(req.model.name, {
      inputShape: data.inputShape, featureCount: data.featureCount, classes: data.classes, layers: req.model.layers,
      metrics: trained.metrics, history: trained.history, lineage, backend: deps.backend.name, weightDtype: 'float32',
    }, (dir) => writeArtifacts(model, dir, hooks.log));
    await checkpoint.clear?.();
    return { ...resultOf(meta, deps.backend), samplesPerSec: trained.samplesPerSec, epochs: trained.epochs, resumedFromEpoch: trained.resumedFromEpoch };
  } finally {
    model.dispose();
  }
}

/** tfjs artifacts plus the ONNX export; a model ONNX cannot express is still served by tfjs. */
export async function writeArtifacts(model: tf.LayersModel, dir: string, log: (line: string) => void): Promise<void> {
  await model.save(fileSaveHandler(dir));
  try {
    await writeFile(join(dir, 'model.onnx'), exportOnnx(model));
  } catch (err) {
    log(`no ONNX export (inference will use tfjs): ${(err as Error).message}`);
  }
}

async function startingModel(req: TrainJobData, registry: ModelRegistry, jobId: string): Promise<{ model: tf.LayersModel; lineage: Lineage }> {
  const dataset = 'builtin' in req.dataset ? { builtin: req.dataset.builtin } : { id: req.dataset.id };
  if (req.model.from) {
    const { model } = await loadModelVersion(registry, req.model.from);
    return { model, lineage: { kind: 'fine-tuned', jobId, dataset, parent: req.model.from } };
  }
  return { model: buildModel(req.model.layers ?? [], { seed: req.fit.seed }), lineage: { kind: 'trained', jobId, dataset } };
}

export async function findVersionOfJob(registry: ModelRegistry, name: string, jobId: string): Promise<ModelVersionMeta | undefined> {
  return (await registry.versions(name)).find((v) => v.lineage.jobId === jobId);
}

function resultOf(meta: ModelVersionMeta, backend: BackendInfo): TrainResult {
  return {
    model: { name: meta.name, version: meta.version },
    metrics: { loss: meta.metrics?.loss ?? NaN, ...meta.metrics },
    epochs: meta.history?.length ?? 0,
    samplesPerSec: 0,
    backend: backend.name,
  };
}
