import {
  NotFoundError,
  throwIfCancelled,
  type InferJobData,
  type InferProgress,
  type InferResult,
  type InferShardJobData,
  type JobHooks,
  type ModelVersionMeta,
  type PreprocessingSpec,
} from '@tq/contracts';
import { BlobNotFoundError } from '@tq/storage';
import { ErrorBudgetError, errorsPartFile, partFile } from './infer-shard.job';
import { runShardsInProcess, runShardsOnQueue, type ShardReport } from './infer-shards';
import { InputShapeError, type InferDeps } from './infer-deps';
import { planShards, readRowIndex } from './row-index';
import { openEncodedTable } from './table-rows';

/** outputs/<jobId>.errors.jsonl: GET /v1/jobs/:id/errors. */
export const ERRORS_EXT = 'errors.jsonl';

/** The default error budget where neither the request nor the configuration sets one. */
const DEFAULT_MAX_ERRORS = 1_000;

/**
 * A table's infer job: the parent of its shards. It checks the table against the model (a missing
 * column fails here, before any shard), splits the rows by the dataset's row index (one shard when
 * it has none), runs the shards (child jobs, or in this process without a queue), then assembles
 * outputs/<jobId>.jsonl from the parts in shard order, streaming them one after another (bounded
 * memory), and outputs/<jobId>.errors.jsonl from the shards' errors when some rows failed. Both are
 * committed under the job's fence; the parts are removed after. Over the error budget (maxErrors,
 * summed over the shards) the job fails naming the count and the first failed rows.
 */
export async function inferTableJob(
  req: InferJobData,
  id: string,
  deps: InferDeps,
  hooks: JobHooks<InferProgress>,
  model: { meta: ModelVersionMeta; spec: PreprocessingSpec | undefined },
): Promise<InferResult> {
  const { meta, spec } = model;
  if (!spec)
    throw new InputShapeError(
      'input.dataset.id',
      `${meta.name} v${meta.version} was not trained on a table, so it cannot read dataset "${id}"'s columns`,
    );
  const info = await deps.datasets.get(id);
  const index = await readRowIndex(deps.datasets, id);
  await checkColumns(id, deps, spec, index?.headerEnd);
  const maxErrors = req.maxErrors ?? deps.maxErrors ?? DEFAULT_MAX_ERRORS;
  const shards: InferShardJobData[] = planShards(info.rows, index).map((plan, shard, all) => ({
    parentJobId: hooks.jobId,
    shard,
    shards: all.length,
    model: req.model,
    dataset: id,
    batchSize: req.batchSize,
    maxErrors,
    ...plan,
  }));
  throwIfCancelled(hooks.signal);
  const started = performance.now();
  // Rows across the shards: a finished shard's in full, a running one's as far as it got.
  // Reported when it changed: the queue runner looks at the shards every 250 ms.
  let said = '';
  const report: ShardReport = async (status) => {
    const rows = status.reduce((sum, s) => sum + s.rows, 0);
    const errors = status.reduce((sum, s) => sum + s.errors, 0);
    const done = status.filter((s) => s.done).length;
    const percent = info.rows > 0 ? Math.min(100, Math.round((100 * rows) / info.rows)) : 0;
    const progress: InferProgress = {
      stage: 'predicting',
      percent,
      rows,
      errors,
      shards: { done, total: shards.length },
    };
    if (JSON.stringify(progress) === said) return;
    said = JSON.stringify(progress);
    await hooks.onProgress(progress);
  };
  // A rerun (again) reports nothing: the progress of every shard was reported already.
  const run = (which: readonly InferShardJobData[], again = false) => {
    const quiet = again ? () => Promise.resolve() : report;
    return deps.shards
      ? runShardsOnQueue(which, deps.shards, hooks, quiet, { again })
      : runShardsInProcess(which, deps, hooks, quiet);
  };
  const ran = await run(shards);
  const total = shards.length;
  const failed = ran.results.reduce((sum, r) => sum + r.errors, 0);
  await hooks.onProgress({
    stage: 'writing',
    percent: 100,
    rows: info.rows,
    errors: failed,
    shards: { done: total, total },
  });
  // An earlier attempt of this job that died after committing the output (the parts may be gone):
  // the output is whole (one atomic put, errors before it), so nothing is assembled or run again.
  const assembled = (await deps.store.blobs.head(deps.store.outputKey(hooks.jobId))) !== undefined;
  // A part deleted after its shard completed (a sweep, a hand in the bucket): that shard runs again, once.
  const missing = assembled ? [] : await missingParts(deps, shards);
  if (missing.length > 0) {
    hooks.log(`parts of shards ${missing.map((s) => s.shard).join(', ')} are gone: computing them again`);
    const again = await run(missing, true);
    missing.forEach((s, k) => (ran.results[s.shard] = again.results[k]!));
    ran.recomputed.shards += missing.length;
    ran.recomputed.rows += missing.reduce((sum, s) => sum + s.rows, 0);
    const still = await missingParts(deps, missing);
    if (still.length > 0)
      throw new NotFoundError(
        'input.dataset.id',
        `${deps.store.outputPartKey(hooks.jobId, partFile(still[0]!.shard))} was deleted while the job ran`,
      );
  }
  const rows = ran.results.reduce((sum, r) => sum + r.rows, 0);
  const errors = ran.results.reduce((sum, r) => sum + r.errors, 0);
  if (errors > maxErrors) {
    await deps.store.blobs.deletePrefix(deps.store.outputPartsPrefix(hooks.jobId));
    throw new ErrorBudgetError(String(errors), maxErrors, ran.results.flatMap((r) => r.firstErrors).slice(0, 5));
  }
  if (assembled) await deps.store.blobs.deletePrefix(deps.store.outputPartsPrefix(hooks.jobId));
  else await assemble(deps, hooks, shards.length, errors > 0);
  const seconds = (performance.now() - started) / 1000;
  const engine = ran.results.find((r) => !r.reused)?.engine ?? 'tfjs';
  return {
    rows,
    rowsPerSec: rows / Math.max(seconds, 1e-6),
    engine,
    backend: deps.backend.name,
    output: `/v1/jobs/${hooks.jobId}/output`,
    errors,
    ...(errors > 0 ? { errorsOutput: `/v1/jobs/${hooks.jobId}/errors` } : {}),
    shards: shards.length,
    recomputed: ran.recomputed,
  };
}

async function missingParts(deps: InferDeps, shards: readonly InferShardJobData[]): Promise<InferShardJobData[]> {
  const heads = await Promise.all(
    shards.map((s) => deps.store.blobs.head(deps.store.outputPartKey(s.parentJobId, partFile(s.shard)))),
  );
  return shards.filter((_, k) => heads[k] === undefined);
}

/** A table without a column the model reads fails the job here, naming the request's field (only its header is read). */
async function checkColumns(id: string, deps: InferDeps, spec: PreprocessingSpec, headerEnd?: number): Promise<void> {
  const opened = await openEncodedTable(deps.datasets, id, spec, {
    chunkRows: 1,
    field: 'input.dataset.id',
    limits: deps.tableLimits,
    range: headerEnd ? { start: 0, end: headerEnd - 1 } : undefined,
  });
  opened.close();
}

/** The parts, in shard order, as one output; the errors likewise; then the parts go. */
async function assemble(deps: InferDeps, hooks: JobHooks<InferProgress>, shards: number, withErrors: boolean) {
  const fence = hooks.fence;
  const guard = fence ? { beforeCommit: () => fence.assertHeld() } : {};
  const { store } = deps;
  if (withErrors)
    await store.blobs.put(
      store.outputKey(hooks.jobId, ERRORS_EXT),
      concatParts(deps, hooks.jobId, shards, errorsPartFile, true),
      guard,
    );
  await store.blobs.put(store.outputKey(hooks.jobId), concatParts(deps, hooks.jobId, shards, partFile, false), guard);
  await store.blobs.deletePrefix(store.outputPartsPrefix(hooks.jobId));
}

async function* concatParts(
  deps: InferDeps,
  jobId: string,
  shards: number,
  file: (shard: number) => string,
  optional: boolean,
): AsyncGenerator<Buffer> {
  for (let shard = 0; shard < shards; shard++) {
    const key = deps.store.outputPartKey(jobId, file(shard));
    let opened;
    try {
      opened = await deps.store.blobs.stream(key);
    } catch (err) {
      if (optional && err instanceof BlobNotFoundError) continue; // a shard without failed rows
      if (err instanceof BlobNotFoundError) throw new Error(`shard ${shard}'s part ${key} is gone`, { cause: err });
      throw err;
    }
    yield* opened.stream as AsyncIterable<Buffer>;
  }
}
