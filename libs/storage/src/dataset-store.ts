import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  NotFoundError,
  datasetInfoSchema,
  type ColumnOverrides,
  type DatasetInfo,
  type TableProfile,
  type Task,
} from '@tq/contracts';
import { ArtifactStore, removeDir, writeFileAtomic } from './artifact-store';
import { ByteLimit } from './byte-limit';
import { openForRead } from './read-stream';

export type DatasetFormat = 'csv' | 'jsonl';

/** What an upload says about its file; decided by the form fields, known (at latest) when the file has been stored. */
export interface DatasetMeta {
  name: string;
  format: DatasetFormat;
  labelColumn?: string | undefined;
  columns?: ColumnOverrides | undefined;
  task?: Task | undefined;
  featureColumns?: string[] | undefined;
  /** The profiling job's id, when the caller chose it before enqueueing. */
  jobId?: string | undefined;
}

/** What a profiling job found: the dataset becomes `ready`. */
export interface DatasetProfiled {
  profile: TableProfile;
  rows: number;
  featureColumns: string[];
  classes: string[];
  task?: Task | undefined;
}

/** The 4xx a file earned (its field names row and column): the dataset becomes `failed`. */
export interface DatasetFailure {
  field: string;
  message: string;
  status: number;
}

export class DatasetNotFoundError extends NotFoundError {
  constructor(
    readonly id: string,
    field = 'dataset.id',
  ) {
    super(field, `dataset "${id}" does not exist`);
  }
}

const INFO = 'info.json';
const sourceName = (format: DatasetFormat) => `source.${format}`;

/**
 * Uploaded tables: `datasets/<id>/source.csv|jsonl` (the bytes as they came) and `info.json`
 * (DatasetInfo: profiling → ready with its profile, or failed with its error). The upload streams
 * into a private staging folder that is renamed into place, so readers never see half a dataset;
 * info.json is rewritten atomically. Built-in datasets are not stored here (libs/ml has them).
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
    try {
      return datasetInfoSchema.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(`dataset "${id}" has a corrupt ${INFO}`, { cause: err });
    }
  }

  markReady(id: string, found: DatasetProfiled): Promise<DatasetInfo> {
    return this.update(id, (info) => {
      const { error: _previous, ...rest } = info;
      return {
        ...rest,
        status: 'ready',
        profile: found.profile,
        rows: found.rows,
        featureColumns: found.featureColumns,
        classes: found.classes,
        ...(found.task ? { task: found.task } : {}),
      };
    });
  }

  markFailed(id: string, error: DatasetFailure): Promise<DatasetInfo> {
    return this.update(id, (info) => ({ ...info, status: 'failed', error }));
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

  private async update(id: string, change: (info: DatasetInfo) => DatasetInfo): Promise<DatasetInfo> {
    const next = datasetInfoSchema.parse(change(await this.get(id)));
    await writeFileAtomic(join(this.store.datasetDir(id), INFO), JSON.stringify(next, null, 2));
    return next;
  }
}
