import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { datasetInfoSchema, type DatasetInfo } from '@tq/contracts';
import { ArtifactStore, removeDir, writeFileAtomic } from './artifact-store';
import { NotFoundError } from '@tq/contracts';
import { openForRead } from './read-stream';

/**
 * A classification dataset held as flat rows: `x` is rows × featureCount float32 (row-major),
 * `y` the class index of each row into `classes`. `inputShape` is the natural shape of one row
 * (e.g. [28, 28, 1] for MNIST, [featureCount] for tables); its element count is featureCount.
 */
export interface TabularData {
  x: Float32Array;
  y: Int32Array;
  rows: number;
  featureCount: number;
  inputShape: number[];
  classes: string[];
  /** Column names of the features, where the data came from a table. */
  featureColumns?: string[];
  labelColumn?: string;
}

export interface DatasetSaveMeta {
  name: string;
  format: 'csv' | 'jsonl' | 'builtin';
  labelColumn: string | null;
  featureColumns: string[];
  /** Size of the original upload. */
  bytes: number;
}

export class DatasetNotFoundError extends NotFoundError {
  constructor(
    readonly id: string,
    field = 'dataset.id',
  ) {
    super(field, `dataset "${id}" does not exist`);
  }
}

const FEATURES = 'features.f32';
const LABELS = 'labels.i32';
const INFO = 'info.json';
/** info.json = DatasetInfo plus the row shape, which DatasetInfo does not carry. */
interface StoredInfo extends DatasetInfo {
  featureCount: number;
  inputShape: number[];
}

/**
 * Uploaded datasets, parsed once and kept as raw little-endian float32 / int32 arrays (a training
 * job then reads them in milliseconds instead of re-parsing text). Each dataset is written into a
 * private staging folder and renamed into place, so readers never see half of one.
 */
export class DatasetStore {
  constructor(readonly store: ArtifactStore) {}

  async save(data: TabularData, meta: DatasetSaveMeta): Promise<DatasetInfo> {
    checkShape(data);
    const id = randomUUID();
    const info: StoredInfo = {
      ...datasetInfoSchema.parse({
        id,
        name: meta.name,
        format: meta.format,
        status: 'ready',
        rows: data.rows,
        featureColumns: meta.featureColumns,
        labelColumn: meta.labelColumn,
        classes: data.classes,
        createdAt: new Date().toISOString(),
        bytes: meta.bytes,
      }),
      featureCount: data.featureCount,
      inputShape: data.inputShape,
    };
    const staging = await this.store.tempDir();
    try {
      await writeFileAtomic(join(staging, FEATURES), bytesOf(data.x));
      await writeFileAtomic(join(staging, LABELS), bytesOf(data.y));
      await writeFileAtomic(join(staging, INFO), JSON.stringify(info, null, 2));
      await mkdir(this.store.datasetsDir(), { recursive: true });
      await rename(staging, this.store.datasetDir(id));
    } finally {
      await removeDir(staging);
    }
    return datasetInfoSchema.parse(info);
  }

  /**
   * The upload as it came (source.csv | source.jsonl). Helper C's stand-in, identical to helper A's
   * DatasetStore.openSource, so that the infer job compiles and runs before A's store lands.
   */
  async openSource(id: string): Promise<{ format: 'csv' | 'jsonl'; stream: Readable }> {
    const info = await this.get(id);
    if (info.format === 'builtin') throw new DatasetNotFoundError(id);
    const path = join(this.store.datasetDir(id), `source.${info.format}`);
    const opened = await openForRead(path, () => new DatasetNotFoundError(id));
    return { format: info.format, stream: opened.stream };
  }

  async get(id: string): Promise<DatasetInfo> {
    return datasetInfoSchema.parse(await this.readInfo(id));
  }

  async load(id: string): Promise<TabularData> {
    const info = await this.readInfo(id);
    const dir = this.store.datasetDir(id);
    const [xBytes, yBytes] = await Promise.all([readFile(join(dir, FEATURES)), readFile(join(dir, LABELS))]);
    // Copy into fresh aligned buffers: a Buffer may sit at an offset no Float32Array can start at.
    const x = new Float32Array(xBytes.byteLength / 4);
    new Uint8Array(x.buffer).set(xBytes);
    const y = new Int32Array(yBytes.byteLength / 4);
    new Uint8Array(y.buffer).set(yBytes);
    const data: TabularData = {
      x,
      y,
      rows: info.rows,
      featureCount: info.featureCount,
      inputShape: info.inputShape,
      classes: info.classes,
      featureColumns: info.featureColumns,
      ...(info.labelColumn === null ? {} : { labelColumn: info.labelColumn }),
    };
    checkShape(data);
    return data;
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

  private async readInfo(id: string): Promise<StoredInfo> {
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
      const raw = JSON.parse(text) as StoredInfo;
      return { ...datasetInfoSchema.parse(raw), featureCount: raw.featureCount, inputShape: raw.inputShape };
    } catch (err) {
      throw new Error(`dataset "${id}" has a corrupt ${INFO}`, { cause: err });
    }
  }
}

function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function checkShape(d: TabularData): void {
  const elements = d.inputShape.reduce((a, b) => a * b, 1);
  if (d.x.length !== d.rows * d.featureCount || d.y.length !== d.rows || elements !== d.featureCount) {
    throw new Error(
      `inconsistent dataset: ${d.rows} rows, ${d.featureCount} features, inputShape [${d.inputShape.join(',')}], x ${d.x.length}, y ${d.y.length}`,
    );
  }
}
