import type { ModelVersionMeta, TrainResult } from '@tq/contracts';
import type { ModelRegistry } from '@tq/storage';

/** What a train job knows beyond the registered version (this attempt's throughput, a resume, a distributed run). */
export type TrainRunFigures = Partial<
  Pick<TrainResult, 'epochs' | 'samplesPerSec' | 'resumedFromEpoch' | 'distributed'>
>;

/**
 * A train job's result from the version it registered. A retried job that finds its version
 * already registered (trainedVersionOf) returns it with no figures: samplesPerSec 0.
 */
export function trainResultOf(meta: ModelVersionMeta, backend: string, figures: TrainRunFigures = {}): TrainResult {
  const { epochs, samplesPerSec, resumedFromEpoch, distributed } = figures;
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
