import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { datasetInfoSchema, type DatasetInfo } from '@tq/contracts';
import { ArtifactStore } from './artifact-store';
import { BlobExistsError, BlobNotFoundError } from './blob/blob-errors';
import type { ByteRange } from './blob/blob-store';
import { ByteLimit } from './byte-limit';
import {
  DatasetNotFoundError,
  type DatasetFailure,
  type DatasetFormat,
  type DatasetMeta,
  type DatasetProfiled,
  type DatasetSettled,
} from './dataset-types';

/** What settling writes into outcome.json, merged over info.json on every read. */
type DatasetOutcome = Pick<DatasetInfo, 'status' | 'error'> & Partial<DatasetProfiled>;

const INFO = 'info.json';
const OUTCOME = 'outcome.json';
/** The bytes as they came; the format is in info.json (it may be known only after the file). */
const SOURCE = 'source';

/**
 * Uploaded tables in the blob store: `datasets/<id>/source` (the bytes as they came), `info.json`
 * (DatasetInfo as uploaded, status profiling), then `outcome.json` once profiling ends (ready with
 * its profile, or failed with its error). info.json is written last, so a dataset exists only once
 * its bytes are whole; it is never rewritten: the end of profiling is one create-only write of
 * outcome.json, so of two writers settling a dataset at once (the API marking a lost job failed,
 * the worker marking it ready) exactly one wins and no read mixes them. Built-in datasets are not
 * stored here (libs/ml has them).
 */
export class DatasetStore {
  constructor(readonly store: ArtifactStore) {}

  /** One tenant's datasets (under tenants/<tenant>/datasets/): an id of another tenant is not found. */
  forTenant(tenant: string): DatasetStore {
    return tenant === this.store.tenant ? this : new DatasetStore(this.store.forTenant(tenant));
  }

  /** The tenant this store is scoped to; undefined for the root view (tests, tools). */
  get tenant(): string | undefined {
    return this.store.tenant;
  }

  private get blobs() {
    return this.store.blobs;
  }

  /**
   * Streams `source` into a new dataset (status `profiling`) with bounded memory. Over `maxBytes`
   * the copy stops with a TooLargeError naming `file`. `meta` may still be arriving (form fields
   * after the file): it is awaited once the bytes are stored, and a rejection stores nothing.
   */
  async create(meta: DatasetMeta | PromiseLike<DatasetMeta>, source: Readable, maxBytes: number): Promise<DatasetInfo> {
    const metaReady = Promise.resolve(meta);
    metaReady.catch(() => undefined); // awaited below; a rejection while the bytes stream is not unhandled
    const id = randomUUID();
    try {
      const counter = new ByteLimit(maxBytes);
      // As pipeline() would: a failure on either side ends both (the upload stops being read).
      source.on('error', (err) => counter.destroy(err));
      counter.on('error', (err) => source.destroy(err));
      await this.blobs.put(this.store.datasetKey(id, SOURCE), source.pipe(counter));
      const m = await metaReady;
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
      await this.blobs.put(this.store.datasetKey(id, INFO), JSON.stringify(info, null, 2), { ifNoneMatch: '*' });
      return info;
    } catch (err) {
      await this.blobs.deletePrefix(this.store.datasetPrefix(id)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The uploaded bytes, for one streaming pass (a profile, a preparation, an infer job), or the
   * bytes of `range` (inclusive offsets, as the profile's row index gives them).
   */
  async openSource(id: string, range?: ByteRange): Promise<{ format: DatasetFormat; stream: Readable; size: number }> {
    const info = await this.get(id);
    if (info.format === 'builtin') throw new DatasetNotFoundError(id);
    try {
      const opened = await this.blobs.stream(this.store.datasetKey(id, SOURCE), range);
      return { format: info.format, stream: opened.stream, size: opened.size };
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new DatasetNotFoundError(id);
      throw err;
    }
  }

  async get(id: string): Promise<DatasetInfo> {
    let infoKey: string;
    try {
      infoKey = this.store.datasetKey(id, INFO);
    } catch {
      throw new DatasetNotFoundError(id); // an id that cannot be a key names no dataset
    }
    const text = await this.readText(infoKey);
    if (text === undefined) throw new DatasetNotFoundError(id);
    // info.json first: outcome.json only ever appears after it, whole (see settle).
    const outcome = await this.readText(this.store.datasetKey(id, OUTCOME));
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
    const ids: string[] = [];
    for await (const { key } of this.blobs.list(this.store.datasetsPrefix())) {
      const [, id, file, ...rest] = this.store.relative(key).split('/');
      if (id && file === INFO && rest.length === 0) ids.push(id);
    }
    // A prefix without info.json is no dataset (yet); a corrupt one is a fault.
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
    await this.blobs.deletePrefix(this.store.datasetPrefix(id));
  }

  /** A small object kept with the dataset (e.g. the profile's row index); undefined when absent. */
  async readExtra(id: string, file: string): Promise<Buffer | undefined> {
    try {
      return await this.blobs.get(this.store.datasetKey(id, extraName(file)));
    } catch (err) {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    }
  }

  async writeExtra(id: string, file: string, data: string | Uint8Array): Promise<void> {
    await this.blobs.put(this.store.datasetKey(id, extraName(file)), data);
  }

  /**
   * First writer wins: outcome.json is created only if absent (a create-only put, atomic on both
   * stores), so readers never see a half-written outcome and a second writer changes nothing.
   * A dataset no longer profiling (settled before this call) is not changed either.
   */
  private async settle(id: string, outcome: DatasetOutcome): Promise<DatasetSettled> {
    const current = await this.get(id);
    if (current.status !== 'profiling') return { won: false, info: current };
    const next = settled(current, outcome); // validated before anything is written
    try {
      await this.blobs.put(this.store.datasetKey(id, OUTCOME), JSON.stringify(outcome, null, 2), { ifNoneMatch: '*' });
    } catch (err) {
      if (!(err instanceof BlobExistsError)) throw err;
      return { won: false, info: await this.get(id) };
    }
    return { won: true, info: next };
  }

  private async readText(key: string): Promise<string | undefined> {
    try {
      return (await this.blobs.get(key)).toString('utf8');
    } catch (err) {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    }
  }
}

/** Extra objects are the caller's own names, never the store's. */
function extraName(file: string): string {
  if (file === INFO || file === OUTCOME || file === SOURCE || !/^[a-z0-9][a-z0-9.-]{0,63}$/.test(file))
    throw new Error(`bad dataset object name "${file}"`);
  return file;
}

/** The dataset as uploaded with its outcome over it (a ready one keeps no error). */
function settled(info: DatasetInfo, outcome: DatasetOutcome): DatasetInfo {
  const { error: _uploaded, ...rest } = info;
  return datasetInfoSchema.parse(outcome.status === 'ready' ? { ...rest, ...outcome } : { ...info, ...outcome });
}
