import { aggregateResultSchema } from '@tq/contracts';
import type {
  AggregateResult,
  DistributedSpec,
  JobFence,
  ModelVersionMeta,
  TrainJobData,
  TrainResult,
} from '@tq/contracts';
import {
  preprocessingFigures,
  shapeOf,
  trainResultOf,
  versionShape,
  writeModelArtifacts,
  type DataShape,
  type TabularData,
  type TrainRunFigures,
} from '@tq/ml';
import type { BlobRef } from '@tq/storage';
import { loadCheckpointWeights } from './aggregator-state';
import { aggregatorJobId } from './child-jobs';
import type { CoordinatorDeps } from './deps';
import { loadRunData, runStartingModel, splitRunData } from './run-setup';

/**
 * Fails on bad input (a model that does not fit the data, no training rows) before anything is
 * enqueued. `loaded` is the run's data when the caller has it already (the train job checked its
 * budgets on it). Answers the data's shape, all registration needs: the rows are not kept for the run.
 */
export async function checkRun(
  request: TrainJobData,
  deps: CoordinatorDeps,
  parentJobId: string,
  loaded?: TabularData,
): Promise<DataShape> {
  const data = loaded ?? (await loadRunData(request, deps));
  const { model } = await runStartingModel(request, deps, parentJobId, data);
  try {
    splitRunData(request, data, model);
  } finally {
    model.dispose();
  }
  return shapeOf(data);
}

/**
 * Registers ONE version from the aggregator's final weights (lineage: trained or fine-tuned by the
 * train job), through the train job's fence: a stale coordinator attempt registers nothing.
 */
export async function registerRun(
  deps: CoordinatorDeps,
  request: TrainJobData,
  shape: DataShape,
  parentJobId: string,
  outcome: AggregateResult,
  finalPath: BlobRef,
  backend: string,
  log: (line: string) => void,
  fence?: JobFence,
): Promise<{ meta: ModelVersionMeta; figures: Pick<TrainRunFigures, 'preprocessing'> }> {
  const { model, lineage } = await runStartingModel(request, deps, parentJobId, shape);
  try {
    await loadCheckpointWeights(finalPath, model);
    const meta = await deps.registry.register(
      request.model.name,
      {
        ...versionShape(request, shape),
        metrics: outcome.metrics ?? { loss: Number.NaN },
        history: outcome.history,
        lineage,
        backend,
        weightDtype: 'float32',
      },
      (out) => writeModelArtifacts(model, out, log, { preprocessing: shape.preprocessing }),
      { fence },
    );
    return { meta, figures: preprocessingFigures(shape) };
  } finally {
    model.dispose();
  }
}

/** The train job's result: the registered version plus the run's throughput and shape. */
export function runResultOf(
  meta: ModelVersionMeta,
  backend: string,
  outcome: AggregateResult,
  spec: DistributedSpec,
  figures: Pick<TrainRunFigures, 'preprocessing'> = {},
): TrainResult {
  return trainResultOf(meta, backend, {
    ...figures,
    samplesPerSec: outcome.samplesPerSec,
    ...(outcome.bestEpoch !== undefined ? { bestEpoch: outcome.bestEpoch } : {}),
    ...(outcome.stoppedEpoch !== undefined ? { stoppedEpoch: outcome.stoppedEpoch } : {}),
    distributed: { workers: spec.workers, mode: spec.mode, steps: outcome.steps, droppedStale: outcome.droppedStale },
  });
}

/**
 * The result for a version an earlier attempt of the train job registered before it died: with
 * the run's figures while its aggregator job is still kept, else the version's alone.
 */
export async function earlierRunResult(
  deps: CoordinatorDeps,
  runId: string,
  meta: ModelVersionMeta,
  backend: string,
  spec: DistributedSpec,
): Promise<TrainResult> {
  const agg = await deps.aggregateQueue.getJob(aggregatorJobId(runId));
  const outcome = aggregateResultSchema.safeParse(agg?.returnvalue);
  return outcome.success && outcome.data.status === 'done'
    ? runResultOf(meta, backend, outcome.data, spec)
    : trainResultOf(meta, backend);
}
