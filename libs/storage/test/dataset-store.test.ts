import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore, DatasetNotFoundError, DatasetStore, type TabularData } from '@tq/storage';

function table(rows: number, features: number, seed: number): TabularData {
  const x = Float32Array.from({ length: rows * features }, (_, i) => Math.sin(i * seed) * 1e3);
  const y = Int32Array.from({ length: rows }, (_, i) => (i * seed) % 3);
  return {
    x,
    y,
    rows,
    featureCount: features,
    inputShape: [features],
    classes: ['a', 'b', 'c'],
    featureColumns: Array.from({ length: features }, (_, i) => `f${i}`),
    labelColumn: 'label',
  };
}

describe('DatasetStore', () => {
  let root: string;
  let store: ArtifactStore;
  let datasets: DatasetStore;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-datasets-'));
    store = new ArtifactStore(root);
    datasets = new DatasetStore(store);
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('saves raw binary arrays and loads them back bit for bit', async () => {
    const data = table(37, 5, 3);
    const info = await datasets.save(data, {
      name: 'sines',
      format: 'csv',
      labelColumn: 'label',
      featureColumns: data.featureColumns!,
      bytes: 1234,
    });
    assert.match(info.id, /^[0-9a-f-]{36}$/);
    assert.equal(info.rows, 37);
    assert.deepEqual(info.classes, ['a', 'b', 'c']);
    const dir = store.datasetDir(info.id);
    assert.deepEqual((await readdir(dir)).sort(), ['features.f32', 'info.json', 'labels.i32']);
    assert.equal((await stat(join(dir, 'features.f32'))).size, 37 * 5 * 4);
    assert.equal((await stat(join(dir, 'labels.i32'))).size, 37 * 4);
    const loaded = await datasets.load(info.id);
    assert.deepEqual(loaded.x, data.x);
    assert.deepEqual(loaded.y, data.y);
    assert.equal(loaded.featureCount, 5);
    assert.deepEqual(loaded.inputShape, [5]);
    assert.deepEqual(loaded.classes, data.classes);
    assert.deepEqual(await datasets.get(info.id), info);
  });

  it('lists every dataset, oldest first, from the folder alone', async () => {
    const second = await datasets.save(table(4, 2, 5), {
      name: 'small',
      format: 'jsonl',
      labelColumn: 'label',
      featureColumns: ['f0', 'f1'],
      bytes: 10,
    });
    const list = await new DatasetStore(new ArtifactStore(root)).list();
    assert.deepEqual(
      list.map((d) => d.name),
      ['sines', 'small'],
    );
    assert.equal(list[1]!.id, second.id);
    assert.deepEqual(await readdir(join(root, 'tmp')), []); // no staging folder left behind
  });

  it('throws DatasetNotFoundError for unknown and malformed ids', async () => {
    await assert.rejects(datasets.load('4b1c3a5e-0000-4000-8000-000000000000'), DatasetNotFoundError);
    await assert.rejects(datasets.get('../../etc'), DatasetNotFoundError);
  });

  it('lists past a folder with no dataset in it, but not past a corrupt one', async () => {
    const fresh = new DatasetStore(new ArtifactStore(await mkdtemp(join(tmpdir(), 'tq-datasets-'))));
    const kept = await fresh.save(table(2, 2, 1), {
      name: 'kept',
      format: 'csv',
      labelColumn: 'label',
      featureColumns: ['f0', 'f1'],
      bytes: 1,
    });
    const broken = await fresh.save(table(2, 2, 2), {
      name: 'broken',
      format: 'csv',
      labelColumn: 'label',
      featureColumns: ['f0', 'f1'],
      bytes: 1,
    });
    await mkdir(join(fresh.store.datasetsDir(), 'empty'));
    assert.deepEqual((await fresh.list()).map((d) => d.name).sort(), ['broken', 'kept']);
    await writeFile(join(fresh.store.datasetDir(broken.id), 'info.json'), '{"rows":');
    await assert.rejects(fresh.list(), new RegExp(`dataset "${broken.id}" has a corrupt info\\.json`));
    assert.equal((await fresh.get(kept.id)).name, 'kept'); // the sound one still reads
    await rm(fresh.store.root, { recursive: true, force: true });
  });

  it('refuses inconsistent data', async () => {
    const bad = { ...table(3, 2, 1), rows: 4 };
    await assert.rejects(
      datasets.save(bad, { name: 'bad', format: 'csv', labelColumn: 'label', featureColumns: ['f0', 'f1'], bytes: 1 }),
      /inconsistent/,
    );
  });
});
