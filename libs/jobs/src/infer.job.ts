import {
  FieldError,
  throwIfCancelled,
  type InferJobData,
  type InferProgress,
  type InferResult,
  type JobHooks,
} from '@tq/contracts';
import { toPredictions, type BackendInfo, type InferenceEngine } from '@tq/ml';
import type { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';

export interface InferDeps {
  engine: InferenceEngine;
  registry: ModelRegistry;
  datasets: DatasetStore;
  inputs: JobInputStore;
  store: ArtifactStore;
  backend: BackendInfo;
}

/** Rows predicted between progress reports and cancel checks; the engine batches inside a chunk. */
const CHUNK_ROWS = 8192;

/** A request whose rows do not fit the model: unrecoverable, and it names the field. */
export class InputShapeError extends FieldError {}

/** Batch inference: rows in, JSONL out (one line per input row, in input order), written atomically. */
export async function inferJob(
  req: InferJobData,
  deps: InferDeps,
  hooks: JobHooks<InferProgress>,
): Promise<InferResult> {
  await hooks.onProgress({ stage: 'loading', percent: 0 });
  const meta = await deps.registry.getVersion(req.model);
  const { x, rows } = await inputRows(req, deps, hooks.jobId, meta.featureCount);
  throwIfCancelled(hooks.signal);
  const started = performance.now();
  const served: { engine: InferResult['engine'] } = { engine: 'tfjs' };
  await deps.store.writeOutput(hooks.jobId, predictionLines(req, deps, hooks, { x, rows, meta }, served));
  // The output holds the answers now; the inline rows it came from are no longer needed.
  await inferCleanup(req, hooks.jobId, deps.inputs);
  const seconds = (performance.now() - started) / 1000;
  return {
    rows,
    rowsPerSec: rows / Math.max(seconds, 1e-6),
    engine: served.engine,
    backend: deps.backend.name,
    output: `/v1/jobs/${hooks.jobId}/output`,
  };
}

/**
 * Removes what an infer job stored beside itself (its inline rows). Safe to call more than once and
 * for jobs that stored nothing; for the job's end however it ends (success, final failure, cancel).
 */
export async function inferCleanup(
  req: Pick<InferJobData, 'input'>,
  jobId: string,
  inputs: JobInputStore,
): Promise<void> {
  if ('stored' in req.input) await inputs.remove(jobId);
}

/** JSONL chunks, one line per input row in input order; checks for a cancel between chunks. */
async function* predictionLines(
  req: InferJobData,
  deps: InferDeps,
  hooks: JobHooks<InferProgress>,
  input: { x: Float32Array; rows: number; meta: { featureCount: number; classes: string[] } },
  served: { engine: InferResult['engine'] },
): AsyncGenerator<string> {
  const { x, rows, meta } = input;
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    throwIfCancelled(hooks.signal);
    const count = Math.min(CHUNK_ROWS, rows - start);
    const chunk = x.subarray(start * meta.featureCount, (start + count) * meta.featureCount);
    const result = await deps.engine.predict(req.model, chunk, count, { batchSize: req.batchSize });
    served.engine = result.engine;
    yield toPredictions(result.scores, result.outputSize, meta.classes)
      .map((p) => JSON.stringify(p) + '\n')
      .join('');
    await hooks.onProgress({
      stage: 'predicting',
      percent: Math.round(((start + count) / rows) * 100),
      rows: start + count,
    });
  }
}

async function inputRows(
  req: InferJobData,
  deps: InferDeps,
  jobId: string,
  featureCount: number,
): Promise<{ x: Float32Array; rows: number }> {
  if ('stored' in req.input) {
    if (req.input.stored.features !== featureCount)
      throw new InputShapeError(
        'input.instances',
        `rows have ${req.input.stored.features} values, the model takes ${featureCount}`,
      );
    const stored = await deps.inputs.load(jobId, req.input.stored);
    return { x: stored.x, rows: stored.rows };
  }
  // Uploaded datasets are tables now (source + profile), encoded with the model's preprocessing on
  // the table infer path; until that lands here an id is refused, not read as a matrix.
  throw new FieldError(
    'input.dataset.id',
    `dataset "${req.input.dataset.id}" is a table; batch inference on tables needs the table path`,
  );
}
