import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, type InferProgress, type InferShardJobData, type TableRecord } from '@tq/contracts';
import {
  ErrorBudgetError,
  inferJob,
  inferShardJob,
  partFile,
  predictVersion,
  profileDatasetJob,
  readRowIndex,
  ROW_INDEX_FILE,
  type InferDeps,
} from '@tq/jobs';
import { JobInputStore } from '@tq/storage';
import { readOutput } from './local-store';
import { ref, TableEnv } from './table-env';

const SHARD_ROWS = 300;
const BEAK = 'Beak Length (mm)';

/** A CSV cell: quoted when it holds a comma, a quote or a line break (as a spreadsheet writes it). */
const cell = (v: string | number | boolean | null | undefined): string => {
  const text = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

/**
 * Sharded infer jobs on a CSV with quoted line breaks, run in this process (no queue): the
 * profile's row index, the shards' byte ranges, order and exactly-once assembly, per-row errors
 * and the error budget, a shard's part uploaded twice. Processes and queues: test/infer-shards.test.ts.
 */
describe('infer on a table in shards (row index from the profile, parts assembled in order)', () => {
  let env: TableEnv;
  let deps: InferDeps;
  /** penguins × 4 (1,376 rows, 5 shards of 300), every third row with a note holding a line break. */
  let records: TableRecord[];
  before(async () => {
    env = await TableEnv.start();
    deps = { ...env, inputs: new JobInputStore(env.store) };
    records = Array.from({ length: 4 }, () => env.penguins.records).flat();
  });
  after(() => env.close());

  /** Uploads `rows` as a CSV with a Note column and profiles it as the worker does (row index every SHARD_ROWS). */
  const uploadCsv = async (rows: TableRecord[], mangle = (line: string, _i: number) => line): Promise<string> => {
    const columns = [...env.penguins.columns, 'Note'];
    const note = (i: number) => (i % 3 === 0 ? `line one of ${i}\nline two, "quoted"` : `plain ${i}`);
    const text =
      '\uFEFF' +
      columns.join(',') +
      '\n' +
      rows.map((r, i) => mangle(columns.map((c) => cell(c === 'Note' ? note(i) : r[c])).join(','), i) + '\n').join('');
    const info = await env.datasets.create(
      { name: 'notes.csv', format: 'csv' },
      Readable.from([Buffer.from(text)]),
      1 << 30,
    );
    await profileDatasetJob(
      { datasetId: info.id, format: 'csv' },
      {
        datasets: env.datasets,
        limits: { maxColumns: 100, maxRows: 1e6, maxRecordBytes: 1 << 20 },
        shardRows: SHARD_ROWS,
      },
      env.hooks(`profile-${info.id}`),
    );
    return info.id;
  };

  /**
   * Uploads `rows` as JSON Lines (a BOM, blank lines here and there, keys in another order from
   * row 2 on) and profiles it as the worker does: a row index every SHARD_ROWS when `indexed`.
   */
  const uploadJsonl = async (
    rows: TableRecord[],
    indexed = true,
    mangle = (line: string, _i: number) => line,
  ): Promise<string> => {
    const line = (r: TableRecord, i: number) =>
      mangle(JSON.stringify(i === 0 ? r : Object.fromEntries(Object.entries(r).reverse())), i) +
      (i % 7 === 0 ? '\n\n' : '\n');
    const text = '\uFEFF' + rows.map(line).join('');
    const info = await env.datasets.create(
      { name: 'optional.jsonl', format: 'jsonl' },
      Readable.from([Buffer.from(text)]),
      1 << 30,
    );
    await profileDatasetJob(
      { datasetId: info.id, format: 'jsonl' },
      {
        datasets: env.datasets,
        limits: { maxColumns: 100, maxRows: 1e6, maxRecordBytes: 1 << 20 },
        ...(indexed ? { shardRows: SHARD_ROWS } : {}),
      },
      env.hooks(`profile-${info.id}`),
    );
    return info.id;
  };

  /** Rows whose optional keys ("Sex", "Body Mass (g)") are left out at every shard's first row but the table's first. */
  const omitting = (rows: TableRecord[]): TableRecord[] =>
    rows.map((r, i) => {
      if (i === 0 || i % SHARD_ROWS !== 0) return r;
      const { Sex: _sex, ['Body Mass (g)']: _mass, ...rest } = r;
      return rest;
    });
  /** The same rows with the left-out keys null: what a direct prediction takes as missing. */
  const asNulls = (rows: TableRecord[]): TableRecord[] =>
    rows.map((r) => ({ ...Object.fromEntries(env.penguins.columns.map((c) => [c, null])), ...r }));

  const lines = async (jobId: string) => (await readOutput(env.store, jobId)).trimEnd().split('\n');

  it('indexes the CSV by parser offsets and assembles 5 shards in input order, every row exactly once', async () => {
    const id = await uploadCsv(records);
    const index = await readRowIndex(env.datasets, id);
    assert.ok(index);
    assert.equal(index.rows, records.length);
    assert.equal(index.starts.length, 4, 'shards 1..4 start at an indexed offset');
    const seen: InferProgress[] = [];
    const result = await inferJob({ model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 }, deps, {
      ...env.hooks<InferProgress>('sharded'),
      onProgress: async (p) => void seen.push(p),
    });
    assert.equal(result.rows, records.length);
    assert.equal(result.shards, 5);
    assert.equal(result.errors, 0);
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records })).predictions;
    assert.deepEqual(
      (await lines('sharded')).map((l) => JSON.parse(l) as unknown),
      want,
      'line n is row n, for every row',
    );
    const last = seen.filter((p) => p.stage === 'predicting').at(-1);
    assert.equal(last?.rows, records.length, 'progress counts the rows of every shard');
    assert.deepEqual(last?.shards, { done: 4, total: 5 });
    // The parts are gone once the output is whole.
    const left = [];
    for await (const e of env.store.blobs.list(env.store.outputPartsPrefix('sharded'))) left.push(e.key);
    assert.deepEqual(left, []);
  });

  it('a bad cell inside a shard is one line in errors.jsonl (row, column) and the job completes', async () => {
    const bad = records.map((r, i) => (i === 699 ? { ...r, [BEAK]: 'abc' } : r)); // row 700: shard 2
    const id = await uploadCsv(bad);
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 },
      deps,
      env.hooks('one-bad'),
    );
    assert.equal(result.errors, 1);
    assert.equal(result.errorsOutput, '/v1/jobs/one-bad/errors');
    const errors = (await env.store.blobs.get(env.store.outputKey('one-bad', 'errors.jsonl'))).toString('utf8');
    assert.deepEqual(
      errors
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
      [{ row: 700, column: BEAK, message: '"abc" is not a number' }],
    );
    const out = await lines('one-bad');
    assert.equal(out.length, records.length, 'one line per row, the failed one included');
    assert.deepEqual(JSON.parse(out[699]!), { error: '"abc" is not a number', row: 700, column: BEAK });
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records })).predictions;
    assert.deepEqual(JSON.parse(out[700]!), want[700], 'the row after it is in its place');
  });

  it('a CSV record with a cell too many and a JSON line that does not parse: one line each in errors.jsonl', async () => {
    const width = env.penguins.columns.length + 1;
    const csvId = await uploadCsv(records, (line, i) => (i === 699 ? `${line},extra` : line)); // row 700: shard 2
    const profiled = await env.datasets.get(csvId);
    assert.deepEqual(profiled.profile?.malformedRows, {
      count: 1,
      first: { row: 700, message: `has ${width + 1} cells, the header has ${width}` },
    });
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id: csvId } }, batchSize: 64 },
      deps,
      env.hooks('cells'),
    );
    assert.equal(result.errors, 1);
    const error = { row: 700, message: `has ${width + 1} cells, the header has ${width}` };
    const errors = (await env.store.blobs.get(env.store.outputKey('cells', 'errors.jsonl'))).toString('utf8');
    assert.deepEqual(JSON.parse(errors), error);
    const out = await lines('cells');
    assert.equal(out.length, records.length, 'one line per row, the malformed one included');
    assert.deepEqual(JSON.parse(out[699]!), { error: error.message, row: 700 });
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records })).predictions;
    assert.deepEqual(JSON.parse(out[700]!), want[700], 'the row after it is in its place');

    const jsonlId = await uploadJsonl(records, true, (line, i) => (i === 1000 ? line.slice(0, -1) : line)); // row 1001
    assert.equal((await env.datasets.get(jsonlId)).profile?.malformedRows?.first.row, 1001);
    const jl = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id: jsonlId } }, batchSize: 64 },
      deps,
      env.hooks('json-line'),
    );
    assert.equal(jl.errors, 1);
    const jlOut = await lines('json-line');
    assert.equal(jlOut.length, records.length);
    const failed = JSON.parse(jlOut[1000]!) as { error: string; row: number };
    assert.equal(failed.row, 1001);
    assert.match(failed.error, /not valid JSON/);
    assert.deepEqual(JSON.parse(jlOut[1001]!), want[1001]);
  });

  it('over the error budget (summed over shards) the job fails naming the count and the first rows', async () => {
    // Rows 10 (shard 0) and 1000 (shard 3): each shard is within a budget of 1, the job is not.
    const bad = records.map((r, i) => (i === 9 || i === 999 ? { ...r, [BEAK]: 'x' } : r));
    const id = await uploadCsv(bad);
    await assert.rejects(
      inferJob(
        { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64, maxErrors: 1 },
        deps,
        env.hooks('over-budget'),
      ),
      (err) =>
        err instanceof ErrorBudgetError &&
        /2 rows failed, over the error budget of 1; first: row 10, column "Beak Length \(mm\)".*row 1000/.test(
          err.message,
        ),
    );
    await assert.rejects(readOutput(env.store, 'over-budget'), 'no output');
  });

  it("a shard's part uploaded twice leaves exactly one copy, and the output has each row once", async () => {
    const id = await uploadCsv(records);
    const index = (await readRowIndex(env.datasets, id))!;
    const shard: InferShardJobData = {
      parentJobId: 'twice',
      shard: 1,
      shards: 5,
      model: ref(env.penguinsMeta),
      dataset: id,
      firstRow: SHARD_ROWS + 1,
      rows: SHARD_ROWS,
      range: { start: index.starts[0]!, end: index.starts[1]! - 1 },
      headerEnd: index.headerEnd,
      batchSize: 64,
      maxErrors: 10,
    };
    // Two attempts at once (a stale one and its successor): both compute, one commit wins.
    const [a, b] = await Promise.all([
      inferShardJob(shard, env, env.hooks('twice')),
      inferShardJob(shard, env, env.hooks('twice')),
    ]);
    assert.deepEqual([a.rows, b.rows], [SHARD_ROWS, SHARD_ROWS]);
    assert.equal([a, b].filter((r) => r.reused).length, 1, 'one of them found the part committed');
    const again = await inferShardJob(shard, env, env.hooks('twice'));
    assert.equal(again.reused, true, 'a third attempt computes nothing');
    const keys = [];
    for await (const e of env.store.blobs.list(env.store.outputPartsPrefix('twice'))) keys.push(e.key);
    assert.deepEqual(keys, [env.store.outputPartKey('twice', partFile(1))]);

    // The parent then runs the other shards and reuses this one: every row once, in order.
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 },
      deps,
      env.hooks('twice'),
    );
    assert.equal(result.rows, records.length);
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records })).predictions;
    assert.deepEqual(
      (await lines('twice')).map((l) => JSON.parse(l) as unknown),
      want,
    );
  });

  it('a part deleted before the assembly is computed again; a dataset deleted mid-run is a 404 naming it', async () => {
    const id = await uploadCsv(records);
    const gone = env.store.outputPartKey('deleted-part', partFile(2));
    const result = await inferJob({ model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 }, deps, {
      ...env.hooks<InferProgress>('deleted-part'),
      onProgress: async (p) => {
        if (p.stage === 'writing' && (await env.store.blobs.head(gone))) await env.store.blobs.delete(gone);
      },
    });
    assert.deepEqual(result.recomputed, { shards: 1, rows: SHARD_ROWS });
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records })).predictions;
    assert.deepEqual(
      (await lines('deleted-part')).map((l) => JSON.parse(l) as unknown),
      want,
    );

    const doomed = await uploadCsv(records);
    await assert.rejects(
      inferJob({ model: ref(env.penguinsMeta), input: { dataset: { id: doomed } }, batchSize: 64 }, deps, {
        ...env.hooks<InferProgress>('deleted-dataset'),
        onProgress: async (p) => {
          if (p.stage === 'predicting') await env.datasets.remove(doomed);
        },
      }),
      (err) => err instanceof NotFoundError && err.status === 404 && err.message.includes(doomed),
    );
  });

  it('a row index that does not match the bytes fails the job instead of shifting the answers', async () => {
    const id = await uploadCsv(records);
    const index = (await readRowIndex(env.datasets, id))!;
    // Offsets of every 300th row, claimed to be every 250th: shard 0 would hold 300 rows, not 250.
    await env.datasets.writeExtra(id, ROW_INDEX_FILE, JSON.stringify({ ...index, every: 250 }));
    await assert.rejects(
      inferJob({ model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 }, deps, env.hooks('skewed')),
      /shard 0 of dataset ".*" read 300 rows where its profile counts 250/,
    );
    await assert.rejects(readOutput(env.store, 'skewed'), 'no output');
  });

  it('shards JSON Lines whose shards start with records lacking optional keys, row for row as the whole file', async () => {
    const rows = omitting(records);
    const id = await uploadJsonl(rows);
    const index = await readRowIndex(env.datasets, id);
    assert.ok(index, 'a JSON Lines table has a row index');
    assert.equal(index.rows, records.length);
    assert.equal(index.headerEnd, 0);
    assert.equal(index.starts.length, 4);
    assert.deepEqual(index.columns, env.penguins.columns);
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 },
      deps,
      env.hooks('jsonl-sharded'),
    );
    assert.equal(result.shards, 5);
    assert.equal(result.errors, 0);
    const sharded = (await lines('jsonl-sharded')).map((l) => JSON.parse(l) as unknown);
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records: asNulls(rows) })).predictions;
    assert.deepEqual(sharded, want, 'line n is row n, for every row');
    // The same file profiled without an index is one shard (the whole file): the same lines.
    const whole = await uploadJsonl(rows, false);
    assert.equal(await readRowIndex(env.datasets, whole), undefined);
    const one = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id: whole } }, batchSize: 64 },
      deps,
      env.hooks('jsonl-whole'),
    );
    assert.equal(one.shards, 1);
    assert.deepEqual(
      (await lines('jsonl-whole')).map((l) => JSON.parse(l) as unknown),
      sharded,
    );
  });

  it('a bad cell in shard 3 of a JSON Lines table is reported with its row in the whole table', async () => {
    const bad = omitting(records).map((r, i) => (i === 1000 ? { ...r, [BEAK]: 'abc' } : r)); // row 1001: shard 3
    const id = await uploadJsonl(bad);
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id } }, batchSize: 64 },
      deps,
      env.hooks('jsonl-bad-cell'),
    );
    assert.equal(result.shards, 5);
    assert.equal(result.errors, 1);
    const errors = (await env.store.blobs.get(env.store.outputKey('jsonl-bad-cell', 'errors.jsonl'))).toString('utf8');
    assert.deepEqual(JSON.parse(errors), { row: 1001, column: BEAK, message: '"abc" is not a number' });
    const out = await lines('jsonl-bad-cell');
    assert.equal(out.length, records.length);
    assert.deepEqual(JSON.parse(out[1000]!), { error: '"abc" is not a number', row: 1001, column: BEAK });
  });

  it('a JSON array stays one shard: its profile writes no row index', async () => {
    const rows = records.slice(0, 2 * SHARD_ROWS + 5);
    const info = await env.datasets.create(
      { name: 'array.json', format: 'jsonl' },
      Readable.from([Buffer.from(JSON.stringify(rows))]),
      1 << 30,
    );
    await profileDatasetJob(
      { datasetId: info.id, format: 'jsonl' },
      {
        datasets: env.datasets,
        limits: { maxColumns: 100, maxRows: 1e6, maxRecordBytes: 1 << 20 },
        shardRows: SHARD_ROWS,
      },
      env.hooks(`profile-${info.id}`),
    );
    assert.equal(await readRowIndex(env.datasets, info.id), undefined);
    const result = await inferJob(
      { model: ref(env.penguinsMeta), input: { dataset: { id: info.id } }, batchSize: 64 },
      deps,
      env.hooks('json-array'),
    );
    assert.equal(result.shards, 1);
    const want = (await predictVersion(env.engine, env.penguinsMeta, { records: rows })).predictions;
    assert.deepEqual(
      (await lines('json-array')).map((l) => JSON.parse(l) as unknown),
      want,
    );
  });
});
