import type { ModelVersionMeta, TrainRequest, TrainResult } from '@tq/contracts';
import type { ModelRegistry, NewVersionMeta } from '@tq/storage';
import type { DataShape } from '../data/tabular-data';
import { modelLayers } from './starting-model';

/** What a train job knows beyond the registered version (this attempt's throughput, a resume, a distributed run). */
export type TrainRunFigures = Partial<
  Pick<
    TrainResult,
    'epochs' | 'samplesPerSec' | 'resumedFromEpoch' | 'distributed' | 'bestEpoch' | 'stoppedEpoch' | 'preprocessing'
  >
>;

/**
 * A train job's result from the version it registered. A retried job that finds its version
 * already registered (trainedVersionOf) returns it with no figures: samplesPerSec 0.
 */
export function trainResultOf(meta: ModelVersionMeta, backend: string, figures: TrainRunFigures = {}): TrainResult {
  const { epochs, samplesPerSec, resumedFromEpoch, distributed, bestEpoch, stoppedEpoch, preprocessing } = figures;
  return {
    model: { name: meta.name, version: meta.version },
    // loss last: a stored metrics object without one still yields a number.
    metrics: { ...meta.metrics, loss: meta.metrics?.loss ?? Number.NaN },
    epochs: epochs ?? meta.history?.length ?? 0,
    samplesPerSec: samplesPerSec ?? 0,
    task: meta.task,
    backend,
    ...(resumedFromEpoch !== undefined ? { resumedFromEpoch } : {}),
    ...(distributed ? { distributed } : {}),
    ...(bestEpoch !== undefined ? { bestEpoch } : {}),
    ...(stoppedEpoch !== undefined ? { stoppedEpoch } : {}),
    ...(preprocessing ? { preprocessing } : {}),
  };
}

/** The version an earlier attempt of job `jobId` registered under `name`, if it got that far. */
export async function trainedVersionOf(
  registry: ModelRegistry,
  name: string,
  jobId: string,
): Promise<ModelVersionMeta | undefined> {
  return (await registry.versions(name)).find((v) => v.lineage.jobId === jobId);
}

/**
 * What a version records of its data: shape, task and classes (or [] for a regression), and for a
 * table the raw input columns and the layers as built (the first inputShape filled in).
 */
export function versionShape(
  req: Pick<TrainRequest, 'model'>,
  data: DataShape,
): Pick<NewVersionMeta, 'inputShape' | 'featureCount' | 'classes' | 'task' | 'inputColumns' | 'layers'> {
  return {
    inputShape: data.inputShape,
    featureCount: data.featureCount,
    classes: data.task === 'regression' ? [] : data.classes,
    task: data.task,
    ...(data.preprocessing ? { inputColumns: data.preprocessing.steps.map((s) => s.name) } : {}),
    ...(req.model.layers ? { layers: modelLayers(req, data) } : {}),
  };
}

/** A table run's result figures: the preprocessed width and the columns left out. */
export function preprocessingFigures(data: Pick<DataShape, 'preprocessing'>): Pick<TrainRunFigures, 'preprocessing'> {
  const p = data.preprocessing;
  return p ? { preprocessing: { width: p.width, ignored: p.ignored } } : {};
}
