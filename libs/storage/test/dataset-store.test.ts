import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { FieldError, TooLargeError, type TableProfile } from '@tq/contracts';
import { ArtifactStore, DatasetNotFoundError, DatasetStore } from '@tq/storage';

const CSV = 'a,b,label\n1,x,cat\n2,y,dog\n';
const PROFILE: TableProfile = {
  rows: 2,
  columns: [
    { name: 'a', kind: 'numeric', missing: 0, distinct: 2, distinctExact: true, min: 1, max: 2, mean: 1.5, std: 0.5 },
  ],
};

/** A source in small chunks, so the copy really streams. */
function chunked(body: string, size = 7): Readable {
  const bytes = Buffer.from(body);
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })(),
  );
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

  it('stores the upload as it came, profiling, and streams it back', async () => {
    const info = await datasets.create(
      { name: 't.csv', format: 'csv', labelColumn: 'label', columns: { b: 'categorical' }, jobId: 'job-1' },
      chunked(CSV),
      1024,
    );
    assert.equal(info.status, 'profiling');
    assert.deepEqual(
      [info.bytes, info.rows, info.labelColumn, info.columns, info.jobId],
      [CSV.length, 0, 'label', { b: 'categorical' }, 'job-1'],
    );
    assert.deepEqual(await datasets.get(info.id), info);
    const source = await datasets.openSource(info.id);
    assert.equal(source.format, 'csv');
    assert.equal(await text(source.stream), CSV);
    assert.deepEqual(await readdir(store.datasetDir(info.id)), ['info.json', 'source.csv']);
    assert.deepEqual(await readdir(join(root, 'tmp')), [], 'no staging folder is left');
  });

  it('awaits meta that arrives after the file, and stores nothing when it is rejected', async () => {
    const late = new Promise<{ name: string; format: 'jsonl' }>((r) =>
      setTimeout(() => r({ name: 'late', format: 'jsonl' }), 20),
    );
    const info = await datasets.create(late, chunked('{"a":1}\n'), 1024);
    assert.deepEqual([info.name, info.format, (await datasets.openSource(info.id)).format], ['late', 'jsonl', 'jsonl']);
    const before = (await datasets.list()).length;
    await assert.rejects(
      datasets.create(Promise.reject(new FieldError('task', 'bad')), chunked(CSV), 1024),
      (err) => err instanceof FieldError && err.field === 'task',
    );
    assert.equal((await datasets.list()).length, before);
  });

  it('refuses a file over maxBytes with 413 naming "file" and leaves nothing behind', async () => {
    const count = (await datasets.list()).length;
    await assert.rejects(
      datasets.create({ name: 'big', format: 'csv' }, chunked('x'.repeat(5000), 100), 4096),
      (err) => err instanceof TooLargeError && err.field === 'file' && /4096/.test(err.message),
    );
    assert.equal((await datasets.list()).length, count);
    assert.deepEqual(await readdir(join(root, 'tmp')), []);
  });

  it('marks ready with the profile, or failed with the error, rewriting info.json whole', async () => {
    const info = await datasets.create({ name: 'r', format: 'csv', labelColumn: 'label' }, chunked(CSV), 1024);
    const failed = await datasets.markFailed(info.id, { field: 'row 2, column "a"', message: 'oops', status: 400 });
    assert.deepEqual([failed.status, failed.error?.status], ['failed', 400]);
    const ready = await datasets.markReady(info.id, {
      profile: PROFILE,
      rows: 2,
      featureColumns: ['a'],
      classes: ['cat', 'dog'],
      task: 'classification',
    });
    assert.deepEqual(await datasets.get(info.id), ready);
    assert.deepEqual(
      [ready.status, ready.rows, ready.classes, ready.task, ready.error, ready.profile],
      ['ready', 2, ['cat', 'dog'], 'classification', undefined, PROFILE],
    );
    const onDisk = JSON.parse(await readFile(join(store.datasetDir(info.id), 'info.json'), 'utf8')) as unknown;
    assert.deepEqual(onDisk, ready);
  });

  it('lists oldest first, ignores folders without info.json, and names unknown ids', async () => {
    const list = await new DatasetStore(new ArtifactStore(root)).list();
    assert.ok(list.length >= 3);
    assert.deepEqual(
      list.map((d) => d.createdAt),
      list.map((d) => d.createdAt).sort(),
    );
    await writeFile(join(store.datasetsDir(), 'stray.txt'), 'x');
    assert.equal((await datasets.list()).length, list.length);
    await assert.rejects(datasets.get('4b1c3a5e-0000-4000-8000-000000000000'), DatasetNotFoundError);
    await assert.rejects(datasets.openSource('4b1c3a5e-0000-4000-8000-000000000000'), DatasetNotFoundError);
    await assert.rejects(datasets.get('../../etc'), DatasetNotFoundError);
  });
});
