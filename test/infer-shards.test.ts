import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue, QueueEvents } from 'bullmq';
import { QueueName, type TableRecord } from '@tq/contracts';
import { records } from '../libs/tables/test/public-tables';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

const PENGUINS = records('penguins') as TableRecord[];
const COLUMNS = Object.keys(PENGUINS[0]!);
/** Rows per shard (INFER_SHARD_ROWS) and in the table: 4 shards, each long enough to be killed in. */
const SHARD = 40_000;
const ROWS = 150_000;
/** Row 100,001 (shard 2) has a beak length that is no number. */
const BAD_ROW = 100_001;
const BEAK = 'Beak Length (mm)';

const cell = (v: string | number | boolean | null | undefined): string => {
  const text = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};
/** Row r (1-based) of the table: penguins over and over, every third with a note holding a line break. */
const recordOf = (r: number): TableRecord => {
  const rec = PENGUINS[(r - 1) % PENGUINS.length]!;
  return r === BAD_ROW ? { ...rec, [BEAK]: 'long' } : rec;
};
const noteOf = (r: number) => (r % 3 === 0 ? `row ${r}\nsecond line, "quoted"` : `row ${r}`);

function tableCsv(): string {
  const lines = [[...COLUMNS, 'Note'].join(',')];
  for (let r = 1; r <= ROWS; r++) {
    const rec = recordOf(r);
    lines.push([...COLUMNS.map((c) => cell(rec[c])), cell(noteOf(r))].join(','));
  }
  return lines.join('\n') + '\n';
}

/**
 * Sharded batch inference with real worker processes on real Redis: a 150k-row CSV with quoted
 * line breaks in 4 shards (child jobs on the infer-shard queue) assembled in row order with every
 * row once, a bad row reported in GET /errors, a worker SIGKILLed mid-shard costing only its shard,
 * and a cancel stopping the shards. The row index and budget in-process: libs/jobs/test/infer-shards.test.ts.
 */
describe('infer in shards across worker processes', () => {
  let system: TestSystem;
  let shards: Queue;
  let events: QueueEvents;
  let model: { name: string; version: number };
  let datasetId: string;
  let trainJobId: string;
  /** The first run's output: what every later run must give, line for line. */
  let reference: string;

  const upload = async (name: string, text: string, label?: string) => {
    const form = new FormData();
    form.append('file', new Blob([text]), name);
    if (label) form.append('labelColumn', label);
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    const info = (await res.json()) as { id: string; status: string };
    assert.equal(res.status, 201, JSON.stringify(info));
    return info.id;
  };
  const infer = async () => {
    const res = await system.request('POST', '/v1/jobs/infer', { model, input: { dataset: { id: datasetId } } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.id as string;
  };
  const output = async (id: string) => String((await system.request('GET', `/v1/jobs/${id}/output`)).body);
  /** The first progress event of a shard of job `parent` still short of its rows: a shard mid-run. */
  const shardMidRun = (parent: string) =>
    new Promise<string>((resolve) => {
      const onProgress = ({ jobId, data }: { jobId: string; data: unknown }) => {
        const rows = (data as { rows?: number }).rows ?? 0;
        if (!jobId.includes(parent.replace(/[^A-Za-z0-9_.-]/g, '_')) || rows === 0 || rows >= SHARD) return;
        events.off('progress', onProgress);
        resolve(jobId);
      };
      events.on('progress', onProgress);
    });

  before(async () => {
    system = await TestSystem.start({ workers: 2, env: { INFER_SHARD_ROWS: String(SHARD) } });
    const connection = { url: system.redisUrl, maxRetriesPerRequest: null };
    shards = new Queue(QueueName.InferShard, { connection, prefix: system.prefix });
    events = new QueueEvents(QueueName.InferShard, { connection, prefix: system.prefix });
    await events.waitUntilReady();
    const penguins = await upload('penguins.jsonl', PENGUINS.map((r) => JSON.stringify(r)).join('\n'), 'Species');
    const train = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'penguins',
        layers: [
          { type: 'dense', units: 16, activation: 'relu' },
          { type: 'dense', units: 3, activation: 'softmax' },
        ],
      },
      dataset: { id: penguins },
      fit: { epochs: 30, batchSize: 32, learningRate: 0.02, validationSplit: 0.2, seed: 7 },
    });
    trainJobId = train.body.id;
    const trained = await system.waitForJob(trainJobId);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));
    model = trained.result.model;
    datasetId = await upload('notes.csv', tableCsv());
  });
  after(async () => {
    await events.close();
    await shards.close();
    await system.stop();
  });

  it('assembles 4 shards in row order, every row once; the bad row is a line of GET /errors', async () => {
    const id = await infer();
    const done = await system.waitForJob(id);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.result.shards, 4);
    assert.equal(done.result.rows, ROWS);
    assert.equal(done.result.errors, 1);
    assert.deepEqual(done.progress.shards, { done: 4, total: 4 });
    console.log(
      `# ${ROWS} rows in 4 shards on 2 workers: ${Math.round(done.result.rowsPerSec)} rows/s (${done.result.engine})`,
    );
    reference = await output(id);
    const lines = reference.trimEnd().split('\n');
    assert.equal(lines.length, ROWS, 'one line per row');
    // Rows on either side of every shard boundary answer as /predict does for that very record.
    const probes = [1, SHARD, SHARD + 1, 2 * SHARD, 2 * SHARD + 1, 3 * SHARD, 3 * SHARD + 1, ROWS];
    const direct = await system.request('POST', `/v1/models/${model.name}/versions/${model.version}/predict`, {
      records: probes.map(recordOf),
    });
    assert.equal(direct.status, 200, JSON.stringify(direct.body));
    probes.forEach((r, k) => {
      const got = JSON.parse(lines[r - 1]!) as { scores: number[] };
      const want = direct.body.predictions[k] as { scores: number[] };
      got.scores.forEach((s, c) => assert.ok(Math.abs(s - want.scores[c]!) <= 1e-4, `row ${r} class ${c}`));
    });
    const right = lines.filter((l, i) => (JSON.parse(l) as { label?: string }).label === recordOf(i + 1).Species);
    assert.ok(right.length / ROWS >= 0.95, `${right.length}/${ROWS} labels right in row order`);

    assert.deepEqual(JSON.parse(lines[BAD_ROW - 1]!), { error: '"long" is not a number', row: BAD_ROW, column: BEAK });
    const errors = await system.request('GET', `/v1/jobs/${id}/errors`);
    assert.equal(errors.status, 200);
    assert.deepEqual(errors.body, { row: BAD_ROW, column: BEAK, message: '"long" is not a number' });
    // A job with no errors file (here the train job): 404 naming the job.
    const none = await system.request('GET', `/v1/jobs/${trainJobId}/errors`);
    assert.equal(none.status, 404);
    assert.match(JSON.stringify(none.body), new RegExp(`job ${trainJobId} has no errors`));
    await assert.rejects(access(join(system.tenantDir(), 'outputs', id)), 'the parts are gone');
  });

  it('a worker SIGKILLed mid-shard: the job completes the same, recomputing at most that shard', async () => {
    const jobId = await infer();
    const shardId = await shardMidRun(jobId);
    const job = await shards.getJob(shardId);
    const worker = system.workers.find((w) => job?.processedBy === `${hostname()}:${w.pid}`);
    assert.ok(worker, `shard ${shardId} runs on ${job?.processedBy}`);
    worker.kill('SIGKILL');
    system.addWorker(); // the fleet keeps two workers
    const done = await system.waitForJob(jobId);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    console.log(
      `# recomputed after a SIGKILL mid-shard: ${JSON.stringify(done.result.recomputed)} (shard ${SHARD} rows)`,
    );
    assert.equal(done.result.recomputed.shards, 1, 'the killed shard ran again');
    assert.ok(done.result.recomputed.rows <= SHARD, `${done.result.recomputed.rows} rows recomputed`);
    assert.equal(await output(jobId), reference, 'the same output, line for line');
  });

  it('cancelling the job mid-run stops its shards, running and waiting, and removes their parts', async () => {
    const id = await infer();
    await shardMidRun(id);
    // No shard starts from here on: those not started stay waiting for the cancel to remove, however
    // fast the running ones finish (a worker runs a 40,000-row shard in well under a second, about
    // what the cancel takes to reach the job's worker on a loaded machine).
    await shards.pause();
    let states: string[];
    try {
      const res = await system.request('DELETE', `/v1/jobs/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((await system.waitForJob(id)).state, 'cancelled');
      const ids = Array.from({ length: 4 }, (_, i) => `infer-shard-${id.replace(/[^A-Za-z0-9_.-]/g, '_')}-${i}`);
      // "unknown": removed between getJob and getState.
      const stateOf = async (i: string) => {
        const state = await (await shards.getJob(i))?.getState();
        return state === undefined || state === 'unknown' ? 'removed' : state;
      };
      states = await waitFor('the shards to stop', async () => {
        const s = await Promise.all(ids.map(stateOf));
        return s.some((x) => x === 'active' || x === 'waiting' || x === 'delayed') ? undefined : s;
      });
    } finally {
      await shards.resume();
    }
    console.log(`# shards after the cancel: ${states.join(', ')}`);
    assert.ok(states.filter((s) => s === 'completed').length < 4, `shards: ${states.join(', ')}`);
    // A stopped shard failed as cancelled (then left the failed list): none failed for another reason.
    assert.deepEqual(
      states.filter((s) => s !== 'completed' && s !== 'removed'),
      [],
      `shards: ${states.join(', ')}`,
    );
    await waitFor('the parts to go', async () =>
      access(join(system.tenantDir(), 'outputs', id)).then(
        () => undefined,
        () => true,
      ),
    );
    assert.equal((await system.request('GET', `/v1/jobs/${id}/output`)).status, 404);
  });
});
