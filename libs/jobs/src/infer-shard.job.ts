import { Readable } from 'node:stream';
import {
  FieldError,
  throwIfCancelled,
  type InferShardJobData,
  type InferShardProgress,
  type InferShardResult,
  type JobHooks,
  type ModelVersionMeta,
  type PreprocessingSpec,
  type RowError,
} from '@tq/contracts';
import type { InferenceEngine } from '@tq/ml';
import { BlobExistsError, type ArtifactStore, type DatasetStore, type ModelRegistry } from '@tq/storage';
import { readTable, type ReadOptions, type TableLimits } from '@tq/tables';
import { answersOf } from './predict';
import { readRowIndex } from './row-index';
import { encodeLenient, type LenientChunk } from './table-rows';

export interface InferShardDeps {
  engine: InferenceEngine;
  registry: ModelRegistry;
  datasets: Pick<DatasetStore, 'openSource' | 'get' | 'readExtra'>;
  store: ArtifactStore;
  tableLimits?: Partial<TableLimits>;
}

/** Rows predicted between progress reports and cancel checks; the engine batches inside a chunk. */
export const SHARD_CHUNK_ROWS = 8192;
/** Failed rows a shard names in its result (the parent quotes them when the budget is exceeded). */
const FIRST_ERRORS = 5;

/** More rows failed than the request allows (maxErrors): the job fails, naming the count and the first ones. */
export class ErrorBudgetError extends FieldError {
  constructor(failed: string, maxErrors: number, first: readonly RowError[]) {
    const quoted = first.map((e) => `row ${e.row}${e.column ? `, column "${e.column}"` : ''}: ${e.message}`);
    super('maxErrors', `${failed} rows failed, over the error budget of ${maxErrors}; first: ${quoted.join('; ')}`);
  }
}

/** A shard's part: its rows' output lines, in order. */
export const partFile = (shard: number): string => `part-${String(shard).padStart(6, '0')}.jsonl`;
/** A shard's failed rows, one RowError per line; written (before the part) only when some failed. */
export const errorsPartFile = (shard: number): string => `errors-${String(shard).padStart(6, '0')}.jsonl`;

/**
 * One shard of a table's infer job: streams its byte range (a CSV's header first), predicts its
 * rows and commits them as one part, outputs/<parent>/part-<n>.jsonl, with a create-only put
 * guarded by the fence: whichever attempt commits first wins and a second upload leaves exactly
 * that copy. Line k of the part is row firstRow + k: a row that fails is a line {"error": ...}
 * and a RowError in errors-<n>.jsonl, committed just before the part (so a committed part always
 * has its errors). A part already there (an earlier attempt got that far) is not computed again.
 */
export async function inferShardJob(
  data: InferShardJobData,
  deps: InferShardDeps,
  hooks: JobHooks<InferShardProgress>,
): Promise<InferShardResult> {
  const blobs = deps.store.blobs;
  const partKey = deps.store.outputPartKey(data.parentJobId, partFile(data.shard));
  const errorsKey = deps.store.outputPartKey(data.parentJobId, errorsPartFile(data.shard));
  if (await blobs.head(partKey)) return committed(deps, errorsKey, data);

  const meta = await deps.registry.getVersion(data.model);
  const spec = await deps.engine.preprocessing(data.model, meta);
  if (!spec) throw new FieldError('model', `${meta.name} v${meta.version} was not trained on a table`);
  const state = { engine: 'tfjs' as InferShardResult['engine'], rows: 0, errors: [] as RowError[] };
  const { chunks, close } = await openShard(data, deps, spec);
  const fence = hooks.fence;
  try {
    await blobs.put(partKey, shardLines(data, deps, hooks, { chunks, meta, spec }, state), {
      ifNoneMatch: '*',
      // The errors object first: a visible part always has its errors beside it.
      beforeCommit: async () => {
        if (state.errors.length > 0) await putOnce(deps.store, errorsKey, jsonLines(state.errors));
        await fence?.assertHeld();
      },
    });
  } catch (err) {
    if (!(err instanceof BlobExistsError)) throw err;
    return committed(deps, errorsKey, data); // another attempt committed this part first
  } finally {
    close();
  }
  return {
    rows: state.rows,
    errors: state.errors.length,
    firstErrors: state.errors.slice(0, FIRST_ERRORS),
    engine: state.engine,
    reused: false,
  };
}

/** The shard's rows, encoded chunk by chunk; errors about the table name the request's field. */
async function openShard(
  data: InferShardJobData,
  deps: InferShardDeps,
  spec: PreprocessingSpec,
): Promise<{ chunks: AsyncGenerator<LenientChunk>; close: () => void }> {
  const source = await shardBytes(data, deps);
  try {
    // Rows numbered in the whole table: a CSV error (wrong cell count, unclosed quote) names the row a whole-file read would.
    const opts = source.format === 'jsonl' && data.range ? await linesRange(data, deps) : { firstRow: data.firstRow };
    // Malformed rows come through, to be reported per row like cells that do not encode.
    const table = await readTable(source.stream, source.format, deps.tableLimits, { ...opts, keepMalformedRows: true });
    const chunks = renamed(encodeLenient(table, spec, SHARD_CHUNK_ROWS, data.firstRow), data.dataset);
    return { chunks, close: source.close };
  } catch (err) {
    source.close();
    throw renameTableError(err, data.dataset);
  }
}

/**
 * A JSON Lines shard is read with the dataset's columns (its first record's keys, kept in the row
 * index): the shard's own first record may omit optional keys. Its rows are numbered in the whole
 * table, so an error names the row a whole-file read would.
 */
async function linesRange(data: InferShardJobData, deps: InferShardDeps): Promise<ReadOptions> {
  const index = await readRowIndex(deps.datasets, data.dataset);
  if (!index?.columns)
    throw new Error(
      `dataset "${data.dataset}" has no columns in its row index: its JSON Lines cannot be read by range`,
    );
  return { columns: index.columns, firstRow: data.firstRow };
}

/**
 * The shard's bytes. A CSV shard: the header's bytes, then the shard's range, as one stream (two
 * reads of the stored bytes). A JSON Lines shard (no header, headerEnd 0): its range alone.
 */
async function shardBytes(data: InferShardJobData, deps: InferShardDeps) {
  const { range, headerEnd } = data;
  const bodyRange =
    range && (range.end === undefined ? { start: range.start } : { start: range.start, end: range.end });
  if (!bodyRange || !headerEnd) {
    // The whole file (a table without a row index), or a JSON Lines shard's range.
    const one = await deps.datasets.openSource(data.dataset, bodyRange);
    return { format: one.format, stream: one.stream, close: () => one.stream.destroy() };
  }
  const header = await deps.datasets.openSource(data.dataset, { start: 0, end: headerEnd - 1 });
  const body = await deps.datasets.openSource(data.dataset, bodyRange).catch((err: unknown) => {
    header.stream.destroy();
    throw err;
  });
  async function* both(): AsyncGenerator<Buffer> {
    try {
      yield* header.stream as AsyncIterable<Buffer>;
      yield* body.stream as AsyncIterable<Buffer>;
    } finally {
      header.stream.destroy();
      body.stream.destroy();
    }
  }
  const stream = Readable.from(both(), { objectMode: false });
  // The two reads are open before the stream is first read: close() ends them whether or not it was.
  const close = () => {
    stream.destroy();
    header.stream.destroy();
    body.stream.destroy();
  };
  return { format: header.format, stream, close };
}

async function* shardLines(
  data: InferShardJobData,
  deps: InferShardDeps,
  hooks: JobHooks<InferShardProgress>,
  job: { chunks: AsyncGenerator<LenientChunk>; meta: ModelVersionMeta; spec: PreprocessingSpec },
  state: { engine: InferShardResult['engine']; rows: number; errors: RowError[] },
): AsyncGenerator<string> {
  for await (const chunk of job.chunks) {
    throwIfCancelled(hooks.signal);
    const result = await deps.engine.predict(data.model, chunk.features, chunk.rows, { batchSize: data.batchSize });
    state.engine = result.engine;
    const answers = answersOf(result.scores, result.outputSize, job.meta, job.spec);
    yield (
      answers
        .map((answer, k) => {
          const failed = chunk.failed.get(k);
          return JSON.stringify(failed ? { error: failed.message, row: failed.row, column: failed.column } : answer);
        })
        .join('\n') + '\n'
    );
    state.errors.push(...chunk.failed.values());
    state.rows += chunk.rows;
    // Over the budget the whole job fails: no need to read on (and errors stay bounded in memory).
    if (state.errors.length > data.maxErrors)
      throw new ErrorBudgetError(
        `at least ${state.errors.length}`,
        data.maxErrors,
        state.errors.slice(0, FIRST_ERRORS),
      );
    const percent = data.rows > 0 ? Math.min(100, Math.round((100 * state.rows) / data.rows)) : 100;
    await hooks.onProgress({ percent, rows: state.rows, errors: state.errors.length });
  }
  // Line n of the output is row n only if every shard holds exactly its rows: a row index that does
  // not match the bytes (or bytes changed since the profile) must fail, never shift the answers.
  if (state.rows !== data.rows)
    throw new Error(
      `shard ${data.shard} of dataset "${data.dataset}" read ${state.rows} rows where its profile counts ${data.rows}`,
    );
}

/** The result of a part committed before (by this job's earlier attempt, or another one racing it). */
async function committed(deps: InferShardDeps, errorsKey: string, data: InferShardJobData): Promise<InferShardResult> {
  const errors: RowError[] = [];
  let count = 0;
  if (await deps.store.blobs.head(errorsKey)) {
    const text = (await deps.store.blobs.get(errorsKey)).toString('utf8');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (count++ < FIRST_ERRORS) errors.push(JSON.parse(line) as RowError);
    }
  }
  return { rows: data.rows, errors: count, firstErrors: errors, engine: 'tfjs', reused: true };
}

/** Create-only: an earlier attempt's copy (the same rows, the same errors) is kept as it is. */
async function putOnce(store: ArtifactStore, key: string, body: string): Promise<void> {
  try {
    await store.blobs.put(key, body, { ifNoneMatch: '*' });
  } catch (err) {
    if (!(err instanceof BlobExistsError)) throw err;
  }
}

const jsonLines = (items: readonly unknown[]): string => items.map((i) => JSON.stringify(i) + '\n').join('');

async function* renamed<T>(chunks: AsyncGenerator<T>, id: string): AsyncGenerator<T> {
  try {
    yield* chunks;
  } catch (err) {
    throw renameTableError(err, id);
  }
}

/** A table-wide problem (a missing column, bad CSV) is the request's: named input.dataset.id, as infer's. */
function renameTableError(err: unknown, id: string): unknown {
  if (!(err instanceof FieldError) || err.constructor !== FieldError) return err;
  return new FieldError('input.dataset.id', `dataset "${id}", ${err.field}: ${err.reason}`);
}
