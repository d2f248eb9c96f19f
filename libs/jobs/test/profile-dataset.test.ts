import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import {
  CancelledError,
  ConflictError,
  FieldError,
  TooLargeError,
  localJobMeta,
  type JobHooks,
  type ProfileDatasetJobData,
  type ProfileDatasetProgress,
} from '@tq/contracts';
import { profileDatasetJob } from '@tq/jobs';
import { ArtifactStore, DatasetStore, type DatasetMeta } from '@tq/storage';
import { DEFAULT_TABLE_LIMITS } from '@tq/tables';

/** vega-datasets' penguins (a public table: text categories, null cells) written as a CSV with NA cells. */
async function penguinsCsv(): Promise<string> {
  const path = join(dirname(require.resolve('vega-datasets')), '..', 'data', 'penguins.json');
  const rows = JSON.parse(await readFile(path, 'utf8')) as Record<string, string | number | null>[];
  const header = Object.keys(rows[0]!);
  const lines = rows.map((r) => header.map((h) => (r[h] === null ? 'NA' : String(r[h]))).join(','));
  return [header.join(','), ...lines].join('\n') + '\n';
}

describe('profile-dataset job', () => {
  let root: string;
  let datasets: DatasetStore;
  let penguins: string;
  const deps = () => ({ datasets, limits: DEFAULT_TABLE_LIMITS });
  const hooks = (seen: ProfileDatasetProgress[] = [], signal = new AbortController().signal) =>
    ({
      jobId: 'profile-dataset-test',
      meta: localJobMeta(),
      signal,
      onProgress: async (p: ProfileDatasetProgress) => void seen.push(p),
      log: () => undefined,
    }) satisfies JobHooks<ProfileDatasetProgress>;
  const stored = async (body: string, meta: Partial<DatasetMeta> = {}) =>
    (await datasets.create({ name: 't', format: 'csv', ...meta }, Readable.from([Buffer.from(body)]), 1 << 30)).id;
  const job = (datasetId: string, patch: Partial<ProfileDatasetJobData> = {}): ProfileDatasetJobData => ({
    datasetId,
    format: 'csv',
    ...patch,
  });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tq-profile-'));
    datasets = new DatasetStore(new ArtifactStore(root));
    penguins = await penguinsCsv();
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('profiles penguins (NA cells, text categories) and marks the dataset ready', async () => {
    const id = await stored(penguins);
    const seen: ProfileDatasetProgress[] = [];
    const result = await profileDatasetJob(
      job(id, { labelColumn: 'Species', columns: { Sex: 'ignore' } }),
      deps(),
      hooks(seen),
    );
    assert.deepEqual(result, { datasetId: id, rows: 344 });
    const info = await datasets.get(id);
    assert.equal(info.status, 'ready');
    assert.deepEqual(info.classes, ['Adelie', 'Chinstrap', 'Gentoo']);
    assert.equal(info.task, 'classification');
    const col = (name: string) => info.profile!.columns.find((c) => c.name === name)!;
    assert.deepEqual([col('Island').kind, col('Island').missing], ['categorical', 0]);
    assert.deepEqual([col('Body Mass (g)').kind, col('Body Mass (g)').missing], ['numeric', 2]);
    assert.equal(col('Sex').dropped, 'ignored by request');
    assert.deepEqual(info.featureColumns, [
      'Island',
      'Beak Length (mm)',
      'Beak Depth (mm)',
      'Flipper Length (mm)',
      'Body Mass (g)',
    ]);
    const label = info.profile!.label;
    assert.ok(label?.task === 'classification');
    assert.deepEqual(
      label.classes.map((c) => [c.value, c.count]),
      [
        ['Adelie', 152],
        ['Gentoo', 124],
        ['Chinstrap', 68],
      ],
    );
    assert.deepEqual(seen.at(-1), { stage: 'reading', percent: 100, rows: 344 });
  });

  it('featureColumns: every other column but the label is ignored; an unknown one, or none, is named', async () => {
    const id = await stored(penguins);
    await profileDatasetJob(job(id, { labelColumn: 'Species', featureColumns: ['Island'] }), deps(), hooks());
    assert.deepEqual((await datasets.get(id)).featureColumns, ['Island']);
    const bad = await stored(penguins);
    await assert.rejects(
      profileDatasetJob(job(bad, { featureColumns: ['Wings'] }), deps(), hooks()),
      (err) => err instanceof FieldError && err.field === 'featureColumns',
    );
    assert.equal((await datasets.get(bad)).error?.field, 'featureColumns');
    for (const featureColumns of [[], ['Species']]) {
      const none = await stored(penguins);
      await assert.rejects(
        profileDatasetJob(job(none, { labelColumn: 'Species', featureColumns }), deps(), hooks()),
        (err) => err instanceof FieldError && err.field === 'featureColumns',
      );
    }
  });

  it('ignores a column named like an object property (__proto__, constructor) outside featureColumns', async () => {
    // Few distinct values: categorical columns, which only the ignore drops.
    const rows = Array.from({ length: 12 }, (_, i) => `${i},${'ab'[i % 2]},${'pq'[i % 2]},${'uv'[i % 2]}`);
    const id = await stored(`x,__proto__,constructor,label\n${rows.join('\n')}\n`);
    await profileDatasetJob(job(id, { labelColumn: 'label', featureColumns: ['x'] }), deps(), hooks());
    const info = await datasets.get(id);
    assert.deepEqual(info.featureColumns, ['x']);
    const dropped = info.profile!.columns.filter((c) => c.dropped !== undefined).map((c) => c.name);
    assert.deepEqual(dropped.sort(), ['__proto__', 'constructor']);
  });

  it('a bad file fails the dataset with the 4xx that names row, column or field', async () => {
    const cases: [string, Partial<ProfileDatasetJobData>, number, string][] = [
      ['a,label\n1,x\nabc,y\n', { columns: { a: 'numeric' } }, 400, 'row 2, column "a"'],
      ['a,label\n1,x\n2,x\n', { labelColumn: 'label' }, 400, 'labelColumn'],
      ['a,label\n1,x\n2,y\n', { labelColumn: 'species' }, 400, 'labelColumn'],
      ['a,label\n1,x\n2,y\n', { labelColumn: 'label', task: 'regression' }, 400, 'task'],
      [`${Array.from({ length: 2001 }, (_, i) => `c${i}`).join(',')}\n`, {}, 413, 'columns'],
    ];
    for (const [body, patch, status, field] of cases) {
      const id = await stored(body);
      await assert.rejects(profileDatasetJob(job(id, patch), deps(), hooks()), (err) => {
        assert.ok(err instanceof FieldError, String(err));
        assert.deepEqual([err.status, err.field, err instanceof TooLargeError], [status, field, status === 413]);
        return true;
      });
      const info = await datasets.get(id);
      assert.deepEqual([info.status, info.error?.status, info.error?.field], ['failed', status, field], body);
    }
  });

  it('ends with what the first writer stored when the API settled the dataset first', async () => {
    // The API marks the job cancelled while the worker profiles (here: at its last progress report).
    const cancelled = { field: 'id', message: 'profiling was cancelled', status: 409 };
    const id = await stored(penguins);
    const racing = { ...hooks(), onProgress: async () => void (await datasets.markFailed(id, cancelled)) };
    await assert.rejects(
      profileDatasetJob(job(id, { labelColumn: 'Species' }), deps(), racing),
      (err) => err instanceof ConflictError && err.field === 'id' && /cancelled/.test(err.message),
    );
    const info = await datasets.get(id);
    assert.deepEqual([info.status, info.error], ['failed', cancelled], 'the worker did not overwrite it');
    // A second attempt of a job that already marked its dataset ready completes with the stored rows.
    const done = await stored(penguins);
    const first = await profileDatasetJob(job(done, { labelColumn: 'Species' }), deps(), hooks());
    assert.deepEqual(await profileDatasetJob(job(done, { labelColumn: 'Species' }), deps(), hooks()), first);
    assert.equal((await datasets.get(done)).status, 'ready');
  });

  it('stops between batches when cancelled, and marks the dataset failed (409)', async () => {
    const id = await stored(penguins);
    const cancel = new AbortController();
    cancel.abort(new CancelledError());
    await assert.rejects(profileDatasetJob(job(id), deps(), hooks([], cancel.signal)), CancelledError);
    assert.deepEqual((await datasets.get(id)).error?.status, 409);
  });
});
