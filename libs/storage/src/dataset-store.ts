import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { datasetInfoSchema, type DatasetInfo } from '@tq/contracts';
import { ArtifactStore, removeDir, writeFileAtomic } from './artifact-store';
import { ByteLimit } from './byte-limit';
import {
  DatasetNotFoundError,
  type DatasetFailure,
  type DatasetFormat,
  type DatasetMeta,
  type DatasetProfiled,
  type DatasetSettled,
} from './dataset-types';
import { openForRead } from './read-stream';

/** What settling writes into outcome.json, merged over info.json on every read. */
type DatasetOutcome = Pick<DatasetInfo, 'status' | 'error'> & Partial<DatasetProfiled>;

const INFO = 'info.json';
const OUTCOME = 'outcome.json';
const sourceName = (format: DatasetFormat) => `source.${format}`;

/**
 * Uploaded tables: `datasets/<id>/source.csv|jsonl` (the bytes as they came) and `info.json`
 * (DatasetInfo as uploaded, status profiling), then `outcome.json` once profiling ends (ready with
 * its profile, or failed with its error). The upload streams into a private staging folder that is
 * renamed into place, so readers never see half a dataset. info.json is never rewritten: the end
 * of profiling is one exclusive file creation, so of two writers settling a dataset at once (the
 * API marking a lost job failed, the worker marking it ready) exactly one wins and no read mixes
 * them. Built-in datasets are not stored here (libs/ml has them).
 */
export class DatasetStore {
  constructor(readonly store: ArtifactStore) {}

  /**
   * Streams `source` into a new dataset (status `profiling`) with bounded memory. Over `maxBytes`
   * the copy stops with a TooLargeError naming `file`. `meta` may still be arriving (form fields
   * after the file): it is awaited once the bytes are stored, and a rejection stores nothing.
   */
  async create(meta: DatasetMeta | PromiseLike<DatasetMeta>, source: Readable, maxBytes: number): Promise<DatasetInfo> {
    const metaReady = Promise.resolve(meta);
    metaReady.catch(() => undefined); // awaited below; a rejection while the bytes stream is not unhandled
    const staging = await this.store.tempDir();
    try {
      const counter = new ByteLimit(maxBytes);
      // The format may only be known with meta: stage under a neutral name, rename below.
      const staged = join(staging, 'source.upload');
      await pipeline(source, counter, createWriteStream(staged));
      const m = await metaReady;
      await rename(staged, join(staging, sourceName(m.format)));
      const id = randomUUID();
      const info = datasetInfoSchema.parse({
        id,
        name: m.name,
        format: m.format,
        status: 'profiling',
        rows: 0,
        featureColumns: m.featureColumns ?? [],
        labelColumn: m.labelColumn ?? null,
        classes: [],
        ...(m.task ? { task: m.task } : {}),
        ...(m.columns ? { columns: m.columns } : {}),
        ...(m.jobId ? { jobId: m.jobId } : {}),
        createdAt: new Date().toISOString(),
        bytes: counter.bytes,
      });
      await writeFileAtomic(join(staging, INFO), JSON.stringify(info, null, 2));
      await mkdir(this.store.datasetsDir(), { recursive: true });
      await rename(staging, this.store.datasetDir(id));
      return info;
    } finally {
      await removeDir(staging);
    }
  }

  /** The uploaded bytes, for one streaming pass (a profile, a preparation, an infer job). */
  async openSource(id: string): Promise<{ format: DatasetFormat; stream: Readable }> {
    const info = await this.get(id);
    if (info.format === 'builtin') throw new DatasetNotFoundError(id);
    const path = join(this.store.datasetDir(id), sourceName(info.format));
    const opened = await openForRead(path, () => new DatasetNotFoundError(id));
    return { format: info.format, stream: opened.stream };
  }

  async get(id: string): Promise<DatasetInfo> {
    let dir: string;
    try {
      dir = this.store.datasetDir(id);
    } catch {
      throw new DatasetNotFoundError(id); // an id that cannot be a folder name names no dataset
    }
    let text: string;
    try {
      text = await readFile(join(dir, INFO), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetNotFoundError(id);
      throw err;
    }
    // info.json first: outcome.json only ever appears after it, whole (see settle).
    const outcome = await readFile(join(dir, OUTCOME), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    try {
      const info = datasetInfoSchema.parse(JSON.parse(text));
      return outcome === undefined ? info : settled(info, JSON.parse(outcome) as DatasetOutcome);
    } catch (err) {
      throw new Error(`dataset "${id}" has a corrupt ${outcome === undefined ? INFO : OUTCOME}`, { cause: err });
    }
  }

  /** Profiling found `found`: ready, unless the dataset was settled first (see DatasetSettled). */
  markReady(id: string, found: DatasetProfiled): Promise<DatasetSettled> {
    return this.settle(id, {
      status: 'ready',
      profile: found.profile,
      rows: found.rows,
      featureColumns: found.featureColumns,
      classes: found.classes,
      ...(found.task ? { task: found.task } : {}),
    });
  }

  /** Profiling ended with `error`: failed, unless the dataset was settled first (see DatasetSettled). */
  markFailed(id: string, error: DatasetFailure): Promise<DatasetSettled> {
    return this.settle(id, { status: 'failed', error });
  }

  /** Every stored dataset, oldest first. */
  async list(): Promise<DatasetInfo[]> {
    let ids: string[];
    try {
      ids = (await readdir(this.store.datasetsDir(), { withFileTypes: true }))
        .filter((e) => e.isDirectory())
        .map((e) => e.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    // A folder without info.json (or not named like an id) is no dataset; a corrupt one is a fault.
    const infos = await Promise.all(
      ids.map((id) =>
        this.get(id).catch((err: unknown) => {
          if (err instanceof DatasetNotFoundError) return undefined;
          throw err;
        }),
      ),
    );
    return infos
      .filter((i): i is DatasetInfo => i !== undefined)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  /** Deletes a dataset (e.g. one whose profiling job could not be enqueued). */
  async remove(id: string): Promise<void> {
    await removeDir(this.store.datasetDir(id));
  }

  /**
   * First writer wins: the outcome is written whole to a private file, then hard-linked to
   * outcome.json, which fails with EEXIST when another writer got there first (as an O_EXCL
   * create would, but readers never see a half-written file, and a crash leaves only a stray
   * temp file). A dataset no longer profiling (settled before this call) is not changed either.
   */
  private async settle(id: string, outcome: DatasetOutcome): Promise<DatasetSettled> {
    const current = await this.get(id);
    if (current.status !== 'profiling') return { won: false, info: current };
    const next = settled(current, outcome); // validated before anything is written
    const dir = this.store.datasetDir(id);
    const staged = join(dir, `${OUTCOME}.${randomUUID()}.tmp`);
    await writeFile(staged, JSON.stringify(outcome, null, 2));
    try {
      await link(staged, join(dir, OUTCOME));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return { won: false, info: await this.get(id) };
    } finally {
      await rm(staged, { force: true });
    }
    return { won: true, info: next };
  }
}

/** The dataset as uploaded with its outcome over it (a ready one keeps no error). */
function settled(info: DatasetInfo, outcome: DatasetOutcome): DatasetInfo {
  const { error: _uploaded, ...rest } = info;
  return datasetInfoSchema.parse(outcome.status === 'ready' ? { ...rest, ...outcome } : { ...info, ...outcome });
}
