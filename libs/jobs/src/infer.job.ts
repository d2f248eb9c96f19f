import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
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
  const path = deps.store.outputPath(hooks.jobId);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const out = createWriteStream(tmp);
  const started = performance.now();
  let engine: InferResult['engine'] = 'tfjs';
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    throwIfCancelled(hooks.signal);
    const count = Math.min(CHUNK_ROWS, rows - start);
    const chunk = x.subarray(start * meta.featureCount, (start + count) * meta.featureCount);
    const result = await deps.engine.predict(req.model, chunk, count, { batchSize: req.batchSize });
    engine = result.engine;
    const lines =
      toPredictions(result.scores, result.outputSize, meta.classes)
        .map((p) => JSON.stringify(p))
        .join('\n') + '\n';
    if (!out.write(lines)) await once(out, 'drain');
    await hooks.onProgress({
      stage: 'predicting',
      percent: Math.round(((start + count) / rows) * 100),
      rows: start + count,
    });
  }
  out.end();
  await once(out, 'finish');
  await rename(tmp, path);
  // The output holds the answers now; the inline rows it came from are no longer needed.
  if ('stored' in req.input) await deps.inputs.remove(hooks.jobId);
  const seconds = (performance.now() - started) / 1000;
  return {
    rows,
    rowsPerSec: rows / Math.max(seconds, 1e-6),
    engine,
    backend: deps.backend.name,
    output: `/v1/jobs/${hooks.jobId}/output`,
  };
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
  const data = await deps.datasets.load(req.input.dataset.id);
  if (data.featureCount !== featureCount)
    throw new InputShapeError(
      'input.dataset.id',
      `dataset has ${data.featureCount} features, the model takes ${featureCount}`,
    );
  return { x: data.x, rows: data.rows };
}
