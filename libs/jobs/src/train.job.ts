import type { Queue } from 'bullmq';
import type { RedisClient } from '@tq/paramserver';
import {
  BUILTIN_DATASET_SHAPES,
  cancelRequested,
  throwIfCancelled,
  type JobHooks,
  type JobRetention,
  type TrainJobData,
  type TrainProgress,
  type TrainResult,
} from '@tq/contracts';
import {
  checkBudgets,
  storedCheckpoint,
  featureMeans,
  modelLayers,
  preprocessingFigures,
  startingModel,
  trainModel,
  trainResultOf,
  trainedVersionOf,
  versionShape,
  writeModelArtifacts,
  type BackendInfo,
  type BudgetInput,
  type Budgets,
  type TabularData,
} from '@tq/ml';
import { coordinateDistributedTraining, type RunDatasets } from '@tq/paramserver';
import { loadTrainingData, type TableLimits, type TrainingDataSources } from '@tq/tables';
import type { ArtifactStore, ModelRegistry } from '@tq/storage';

export interface TrainDeps {
  registry: ModelRegistry;
  /** A DatasetStore (typed by the calls training makes). */
  datasets: RunDatasets;
  store: ArtifactStore;
  backend: BackendInfo;
  /** The same budgets the API checks at submission, checked again before anything is allocated. */
  budgets: Budgets;
  /** Reader bounds for uploaded tables (from @tq/config). */
  tableLimits?: Partial<TableLimits>;
}
/** A data-parallel run also needs Redis (the parameter server's channel), its key prefix and the child queues. */
export interface DistributedTrainDeps extends TrainDeps {
  redis: RedisClient;
  keyPrefix: string;
  aggregateQueue: Queue;
  shardQueue: Queue;
  /** How long the run's finished child jobs are kept (the configured job history). */
  retention?: JobRetention;
  /** Cap of the backoff while the coordinator retries Redis (REDIS_RETRY_MAX_MS). */
  redisRetryMaxMs?: number;
}

/** The train job: local training, or the coordinator of a data-parallel run when `distributed` is set. */
export async function trainJob(
  data: TrainJobData,
  deps: DistributedTrainDeps,
  hooks: JobHooks<TrainProgress>,
): Promise<TrainResult> {
  if (!data.distributed) return runTraining(data, deps, hooks);
  // The same budgets as a local run, before any child job exists. A built-in's rows are known;
  // a table is prepared (its width decides the first layer's parameters when inputShape is left out).
  if ('builtin' in data.dataset) {
    checkBudgets(budgetInput(data, BUILTIN_DATASET_SHAPES[data.dataset.builtin].rows), deps.budgets);
    return coordinateDistributedTraining(data, deps, hooks);
  }
  // Read once here: the coordinator checks the run on the same rows, then keeps only their shape.
  const table = await loadTrainingData(data, { ...trainingSources(deps), signal: hooks.signal });
  checkBudgets(budgetInput(data, table.rows, table), deps.budgets);
  return coordinateDistributedTraining(data, deps, hooks, table);
}

/**
 * One training job: data → model (new or fine-tuned) → epochs with checkpoints → one registered
 * version holding model.json, weights.bin and model.onnx, written atomically. Re-running the same
 * job id after a crash returns the version it already registered instead of adding a second one;
 * hooks.fence makes that race-free (a stale attempt still running commits neither a version nor a checkpoint).
 * Cancellation is honoured between stages and between batches.
 */
export async function runTraining(
  req: TrainJobData,
  deps: TrainDeps,
  hooks: JobHooks<TrainProgress>,
): Promise<TrainResult> {
  const done = await trainedVersionOf(deps.registry, req.model.name, hooks.jobId);
  if (done) return trainResultOf(done, deps.backend.name);
  await hooks.onProgress({ stage: 'loading', percent: 0 });
  const data = await loadTrainingData(req, {
    ...trainingSources(deps),
    signal: hooks.signal,
    onLoading: (fraction) => hooks.onProgress({ stage: 'loading', percent: 100 * fraction }),
  });
  checkBudgets(budgetInput(req, data.rows, data), deps.budgets);
  throwIfCancelled(hooks.signal);
  const { model, lineage } = await startingModel(req, deps.registry, hooks.jobId, data);
  try {
    throwIfCancelled(hooks.signal);
    const checkpoint = storedCheckpoint(deps.store, trainCheckpointKey(hooks.jobId), hooks.fence);
    const trained = await trainModel({
      model,
      data,
      fit: req.fit,
      onProgress: hooks.onProgress,
      shouldStop: () => cancelRequested(hooks.signal),
      checkpoint,
      modelField: req.model.from ? 'model.from' : 'model.layers',
    });
    await hooks.onProgress({ stage: 'saving', percent: 100, epoch: trained.epochs, epochs: req.fit.epochs });
    throwIfCancelled(hooks.signal);
    const meta = await deps.registry.register(
      req.model.name,
      {
        ...versionShape(req, data),
        // Every row loaded (the validation split included): the explanations' default baseline.
        featureMeans: featureMeans(data.x, data.rows, data.featureCount),
        metrics: trained.metrics,
        history: trained.history,
        lineage,
        backend: deps.backend.name,
        weightDtype: 'float32',
      },
      (out) => writeModelArtifacts(model, out, hooks.log, { preprocessing: data.preprocessing }),
      { fence: hooks.fence },
    );
    await checkpoint.clear?.();
    const { samplesPerSec, epochs, resumedFromEpoch, bestEpoch, stoppedEpoch } = trained;
    return trainResultOf(meta, deps.backend.name, {
      samplesPerSec,
      epochs,
      resumedFromEpoch,
      bestEpoch,
      stoppedEpoch,
      ...preprocessingFigures(data),
    });
  } finally {
    model.dispose();
  }
}

/** The checkpoint key (ArtifactStore.checkpointPrefix) of a single-process train job. */
export const trainCheckpointKey = (jobId: string): string => `train-${jobId}`;

/** What the budgets bound in a train request: the layers to build (not a fine-tuned version's), rows × epochs. */
function budgetInput(req: TrainJobData, rows: number, data?: TabularData): BudgetInput {
  const layers = req.model.layers ? { layers: { spec: modelLayers(req, data), field: 'model.layers' } } : {};
  // The classes as prepared (a request that changes the task or the columns re-profiles the label).
  const classes = data?.task === 'classification' ? { classes: { count: data.classes.length, field: 'dataset' } } : {};
  return { ...layers, ...classes, train: { rows, epochs: req.fit.epochs } };
}

/** Where loadTrainingData reads an uploaded table (and a fine-tuned version's preprocessing.json). */
function trainingSources(deps: TrainDeps): TrainingDataSources {
  return { datasets: deps.datasets, registry: deps.registry, tableLimits: deps.tableLimits };
}
