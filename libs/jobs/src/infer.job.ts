import {
  throwIfCancelled,
  type InferJobData,
  type InferProgress,
  type InferResult,
  type JobHooks,
  type ModelVersionMeta,
  type PreprocessingSpec,
} from '@tq/contracts';
import type { JobInputStore } from '@tq/storage';
import { InputShapeError, type InferDeps } from './infer-deps';
import { inferTableJob } from './infer-table';

export { InputShapeError, type InferDeps } from './infer-deps';
import { answersOf } from './predict';
import type { EncodedChunk } from './table-rows';

/** Rows predicted between progress reports and cancel checks; the engine batches inside a chunk. */
const CHUNK_ROWS = 8192;

/** Rows to predict, chunk by chunk, and how many there are when known up front (for progress). */
interface InputRows {
  chunks: AsyncIterable<EncodedChunk>;
  total: number | undefined;
}

/**
 * Batch inference: rows in (inline numbers, or an uploaded table encoded with the model's fitted
 * preprocessing), JSONL out (one line per input row, in input order), written atomically. A table
 * is split into shards (infer-table.ts); inline rows are predicted here in one pass.
 */
export async function inferJob(
  req: InferJobData,
  deps: InferDeps,
  hooks: JobHooks<InferProgress>,
): Promise<InferResult> {
  await hooks.onProgress({ stage: 'loading', percent: 0 });
  const meta = await deps.registry.getVersion(req.model);
  const spec = await deps.engine.preprocessing(req.model, meta);
  if ('dataset' in req.input) return inferTableJob(req, req.input.dataset.id, deps, hooks, { meta, spec });
  const input = await inputRows(req, deps, hooks.jobId, meta);
  throwIfCancelled(hooks.signal);
  const started = performance.now();
  const served = { engine: 'tfjs' as InferResult['engine'], rows: 0 };
  // The fence: an attempt that lost its job (stalled past its lock) writes its rows but never commits them.
  const fence = hooks.fence;
  await deps.store.writeOutput(hooks.jobId, predictionLines(req, deps, hooks, { input, meta, spec }, served), {
    ...(fence ? { beforeCommit: () => fence.assertHeld() } : {}),
  });
  // The output holds the answers now; the inline rows it came from are no longer needed.
  await inferCleanup(req, hooks.jobId, deps.inputs);
  const seconds = (performance.now() - started) / 1000;
  return {
    rows: served.rows,
    rowsPerSec: served.rows / Math.max(seconds, 1e-6),
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
  job: { input: InputRows; meta: ModelVersionMeta; spec: PreprocessingSpec | undefined },
  served: { engine: InferResult['engine']; rows: number },
): AsyncGenerator<string> {
  const { input, meta, spec } = job;
  for await (const chunk of input.chunks) {
    throwIfCancelled(hooks.signal);
    const result = await deps.engine.predict(req.model, chunk.features, chunk.rows, { batchSize: req.batchSize });
    served.engine = result.engine;
    served.rows += chunk.rows;
    yield answersOf(result.scores, result.outputSize, meta, spec)
      .map((p) => JSON.stringify(p) + '\n')
      .join('');
    // A table's total is its profile's row count: clamped, should the source have changed since.
    const percent = input.total ? Math.min(100, Math.round((served.rows / input.total) * 100)) : 0;
    await hooks.onProgress({ stage: 'predicting', percent, rows: served.rows });
  }
}

async function inputRows(
  req: InferJobData,
  deps: InferDeps,
  jobId: string,
  meta: ModelVersionMeta,
): Promise<InputRows> {
  if (!('stored' in req.input)) throw new Error('inputRows: a table is inferred by inferTableJob');
  if (req.input.stored.features !== meta.featureCount)
    throw new InputShapeError(
      'input.instances',
      `rows have ${req.input.stored.features} values, the model takes ${meta.featureCount}`,
    );
  const stored = await deps.inputs.load(jobId, req.input.stored);
  return { chunks: matrixChunks(stored.x, stored.rows, meta.featureCount), total: stored.rows };
}

async function* matrixChunks(x: Float32Array, rows: number, width: number): AsyncGenerator<EncodedChunk> {
  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const count = Math.min(CHUNK_ROWS, rows - start);
    yield { features: x.subarray(start * width, (start + count) * width), rows: count };
  }
}
