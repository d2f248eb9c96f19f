import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { FieldError, TooLargeError, type TableProfile } from '@tq/contracts';
import { ArtifactStore, DatasetNotFoundError, DatasetStore, type DatasetProfiled } from '@tq/storage';

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
  /** The names of a dataset's objects, sorted. */
  const objectsOf = async (id: string): Promise<string[]> => {
    const names: string[] = [];
    for await (const { key } of store.blobs.list(store.datasetPrefix(id))) names.push(key.split('/').pop()!);
    return names.sort();
  };
  const allObjects = async (): Promise<string[]> => {
    const keys: string[] = [];
    for await (const { key } of store.blobs.list(store.datasetsPrefix())) keys.push(key);
    return keys.sort();
  };

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
    assert.deepEqual(await objectsOf(info.id), ['info.json', 'source']);
  });

  it('awaits meta that arrives after the file, and stores nothing when it is rejected', async () => {
    const late = new Promise<{ name: string; format: 'jsonl' }>((r) =>
      setTimeout(() => r({ name: 'late', format: 'jsonl' }), 20),
    );
    const info = await datasets.create(late, chunked('{"a":1}\n'), 1024);
    assert.deepEqual([info.name, info.format, (await datasets.openSource(info.id)).format], ['late', 'jsonl', 'jsonl']);
    const before = (await datasets.list()).length;
    const objects = await allObjects();
    await assert.rejects(
      datasets.create(Promise.reject(new FieldError('task', 'bad')), chunked(CSV), 1024),
      (err) => err instanceof FieldError && err.field === 'task',
    );
    assert.equal((await datasets.list()).length, before);
    assert.deepEqual(await allObjects(), objects, 'the bytes of the refused upload are deleted');
  });

  it('refuses a file over maxBytes with 413 naming "file" and leaves nothing behind', async () => {
    const count = (await datasets.list()).length;
    const objectsBefore = await allObjects();
    await assert.rejects(
      datasets.create({ name: 'big', format: 'csv' }, chunked('x'.repeat(5000), 100), 4096),
      (err) => err instanceof TooLargeError && err.field === 'file' && /4096/.test(err.message),
    );
    assert.equal((await datasets.list()).length, count);
    assert.deepEqual(await allObjects(), objectsBefore, 'no object of the refused upload is left');
  });

  const FOUND: DatasetProfiled = {
    profile: PROFILE,
    rows: 2,
    featureColumns: ['a'],
    classes: ['cat', 'dog'],
    task: 'classification',
  };
  const FAILURE = { field: 'row 2, column "a"', message: 'oops', status: 400 };
  const upload = () => datasets.create({ name: 'r', format: 'csv', labelColumn: 'label' }, chunked(CSV), 1024);

  it('marks ready with the profile once; a later markFailed loses and changes nothing', async () => {
    const info = await upload();
    const ready = await datasets.markReady(info.id, FOUND);
    assert.equal(ready.won, true);
    assert.deepEqual(await datasets.get(info.id), ready.info);
    assert.deepEqual(
      [ready.info.status, ready.info.rows, ready.info.classes, ready.info.task, ready.info.error, ready.info.profile],
      ['ready', 2, ['cat', 'dog'], 'classification', undefined, PROFILE],
    );
    const late = await datasets.markFailed(info.id, FAILURE);
    assert.deepEqual(late, { won: false, info: ready.info });
    assert.deepEqual(await datasets.get(info.id), ready.info);
    const onDisk = JSON.parse(
      (await store.blobs.get(store.datasetKey(info.id, 'info.json'))).toString('utf8'),
    ) as unknown;
    assert.deepEqual(onDisk, info, 'info.json stays as uploaded; the outcome is merged on read');
    assert.deepEqual(await objectsOf(info.id), ['info.json', 'outcome.json', 'source']);
  });

  it('settles concurrent markReady / markFailed first-writer-wins: exactly one wins, reads give its outcome', async () => {
    for (let round = 0; round < 20; round++) {
      const { id } = await upload();
      // Two stores over the same folder, as the API and the worker are two processes.
      const worker = new DatasetStore(new ArtifactStore(root));
      const [ready, failed] = await Promise.all([worker.markReady(id, FOUND), datasets.markFailed(id, FAILURE)]);
      assert.equal([ready, failed].filter((s) => s.won).length, 1, `round ${round}: exactly one writer wins`);
      const winner = ready.won ? ready.info : failed.info;
      assert.deepEqual(await datasets.get(id), winner);
      assert.deepEqual(ready.info, winner, 'the loser is told what the winner wrote');
      assert.deepEqual(failed.info, winner);
      assert.equal(winner.status, ready.won ? 'ready' : 'failed');
      assert.deepEqual(await objectsOf(id), ['info.json', 'outcome.json', 'source']);
    }
  });

  it('lists oldest first, ignores prefixes without info.json, and names unknown ids', async () => {
    const list = await new DatasetStore(new ArtifactStore(root)).list();
    assert.ok(list.length >= 3);
    assert.deepEqual(
      list.map((d) => d.createdAt),
      list.map((d) => d.createdAt).sort(),
    );
    await store.blobs.put('datasets/stray.txt', 'x');
    await store.blobs.put('datasets/no-info/source', 'x');
    assert.equal((await datasets.list()).length, list.length);
    await assert.rejects(datasets.get('4b1c3a5e-0000-4000-8000-000000000000'), DatasetNotFoundError);
    await assert.rejects(datasets.openSource('4b1c3a5e-0000-4000-8000-000000000000'), DatasetNotFoundError);
    await assert.rejects(datasets.get('../../etc'), DatasetNotFoundError);
  });
});
