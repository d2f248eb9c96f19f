import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FieldError, localJobMeta, type JobHooks, type ModelVersionMeta, type TableRecord } from '@tq/contracts';
import { InferenceEngine, initBackend, type BackendInfo } from '@tq/ml';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { profileTable, readTable } from '@tq/tables';
import { fitTableModel, registerTableModel, type TableModel } from './table-models';

export const fieldError = (field: string) => (err: unknown) => err instanceof FieldError && err.field === field;
export const jsonl = (records: TableRecord[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';
export const ref = (m: ModelVersionMeta) => ({ name: m.name, version: m.version });

/**
 * A private artifact folder with two table models registered as the train job registers them
 * (penguins classification, cars regression, each with its upload), a dataset store and an engine.
 */
export class TableEnv {
  private constructor(
    readonly root: string,
    readonly store: ArtifactStore,
    readonly registry: ModelRegistry,
    readonly datasets: DatasetStore,
    readonly engine: InferenceEngine,
    readonly backend: BackendInfo,
    readonly penguins: TableModel,
    readonly cars: TableModel,
  ) {}
  penguinsMeta!: ModelVersionMeta;
  carsMeta!: ModelVersionMeta;

  static async start(): Promise<TableEnv> {
    const backend = await initBackend();
    const root = await mkdtemp(join(tmpdir(), 'tq-table-serving-'));
    const store = new ArtifactStore(root);
    const registry = new ModelRegistry(store);
    const engine = new InferenceEngine({ registry, cacheSize: 4 });
    const [penguins, cars] = [await fitTableModel('penguins'), await fitTableModel('cars')];
    const env = new TableEnv(root, store, registry, new DatasetStore(store), engine, backend, penguins, cars);
    env.penguinsMeta = await env.register('penguins', penguins, await env.upload('jsonl', jsonl(penguins.records)));
    env.carsMeta = await env.register('cars', cars, await env.upload('jsonl', jsonl(cars.records)));
    return env;
  }

  async close(): Promise<void> {
    await this.engine.close();
    this.penguins.model.dispose();
    this.cars.model.dispose();
    await rm(this.root, { recursive: true, force: true });
  }

  /** A version as the train job registers one for a table: artifacts, preprocessing.json, task, columns. */
  register(name: string, t: TableModel, datasetId: string): Promise<ModelVersionMeta> {
    return registerTableModel(this.registry, name, t, { kind: 'trained', dataset: { id: datasetId } });
  }

  /** An uploaded table, stored and profiled through the dataset store as the upload path does it. */
  async upload(format: 'csv' | 'jsonl', text: string): Promise<string> {
    const bytes = () => Readable.from([Buffer.from(text)]);
    const info = await this.datasets.create({ name: `table.${format}`, format }, bytes(), 1 << 30);
    const profile = await profileTable(await readTable(bytes(), format));
    const columns = profile.columns.map((c) => c.name);
    await this.datasets.markReady(info.id, { profile, rows: profile.rows, featureColumns: columns, classes: [] });
    return info.id;
  }

  hooks<P>(jobId: string, signal = new AbortController().signal): JobHooks<P> {
    return { jobId, meta: localJobMeta(), signal, onProgress: async () => undefined, log: () => undefined };
  }
}
