import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { S3TestServer } from '../libs/storage/test/s3-test-server';
import { API_MAIN } from '../tools/processes';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

const FEATURES = 8;
/** A table whose class a small network learns: the sign of a weighted sum of the features. */
function table(rows: number, seed: number): string {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const lines = [[...Array.from({ length: FEATURES }, (_, i) => `f${i}`), 'label'].join(',')];
  for (let r = 0; r < rows; r++) {
    const x = Array.from({ length: FEATURES }, next);
    const score = x.reduce((acc, v, i) => acc + v * (i % 2 ? 1 : -0.5), 0);
    lines.push([...x.map((v) => v.toFixed(4)), score > 0 ? 'up' : 'down'].join(','));
  }
  return lines.join('\n') + '\n';
}

/** Files a process left in its own ARTIFACT_DIR (its scratch), relative names. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1));
}

/**
 * The fleet setting of issue 12: the API and two workers, each with its own ARTIFACT_DIR and no
 * folder in common, share only Redis and an S3 server (s3rver on loopback). A table is uploaded,
 * trained on, compressed, batch-inferred (a worker is SIGKILLed mid-run) and served, and every
 * byte of it lives in the bucket: no process's own folder holds a model, a dataset or an output.
 */
describe('a fleet without a shared disk: S3 is the only store in common', () => {
  let s3: S3TestServer;
  let system: TestSystem;
  let dirs: string[];
  const upload = async (name: string, csv: string): Promise<string> => {
    const form = new FormData();
    form.append('file', new Blob([csv]), name);
    form.append('labelColumn', 'label');
    const res = await system.fetch(`/v1/datasets`, { method: 'POST', body: form });
    const info = (await res.json()) as { id: string };
    assert.equal(res.status, 201, JSON.stringify(info));
    return info.id;
  };

  before(async () => {
    s3 = await S3TestServer.start('tq-fleet');
    const base = join(tmpdir(), `tq-fleet-${process.pid}`);
    dirs = ['api', 'worker-1', 'worker-2', 'worker-3'].map((p) => join(base, p));
    system = await TestSystem.start({
      workers: 0,
      env: { ...s3.appEnv(), ARTIFACT_DIR: dirs[0]!, DOWNLOAD_REDIRECT_SECONDS: '60' },
    });
    system.addWorker({ ARTIFACT_DIR: dirs[1]!, ORT_INTRA_OP_THREADS: '1' });
    system.addWorker({ ARTIFACT_DIR: dirs[2]!, ORT_INTRA_OP_THREADS: '1' });
    system.addWorker({ ARTIFACT_DIR: dirs[3]!, ORT_INTRA_OP_THREADS: '1' });
  });
  /** Waits until the job is active and `ready(view)`, then SIGKILLs the worker running it. */
  const killItsWorker = async (id: string, what: string, ready: (view: any) => boolean) => {
    const running = await waitFor(what, async () => {
      const view = (await system.request('GET', `/v1/jobs/${id}`)).body;
      assert.notEqual(view.state, 'failed', JSON.stringify(view));
      return view.state === 'active' && ready(view) ? view : undefined;
    });
    const victim = system.workers.find((w) => w.exitCode === null && `${running.worker}`.endsWith(`:${w.pid}`));
    assert.ok(victim, `the job runs on ${running.worker}`);
    victim.kill('SIGKILL');
    return running;
  };
  after(async () => {
    await system?.stop();
    await s3?.stop();
  });

  it('trains and batch-infers through a worker kill each, compresses, predicts, with every byte in the bucket', async () => {
    const trainSet = await upload('train.csv', table(3000, 1));
    const train = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'fleet',
        layers: [
          { type: 'dense', units: 16, activation: 'relu' },
          { type: 'dense', units: 2, activation: 'softmax' },
        ],
      },
      dataset: { id: trainSet },
      fit: { epochs: 60, batchSize: 16, learningRate: 0.01, validationSplit: 0.2, seed: 3 },
    });
    assert.equal(train.status, 202, JSON.stringify(train.body));
    // Its worker dies after a few epochs: another host resumes from the checkpoint in the bucket.
    const killed = await killItsWorker(train.body.id, 'the train job in epoch 3', (view) => view.progress?.epoch >= 3);
    const trained = await system.waitForJob(train.body.id);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));
    // progress.epoch is the epoch in progress (1-based): every one before it had its checkpoint saved.
    const checkpointed = killed.progress.epoch - 1;
    const resumed = trained.result.resumedFromEpoch;
    assert.ok(resumed >= checkpointed, `resumed from epoch ${resumed}, killed in epoch ${killed.progress.epoch}`);
    assert.ok(trained.result.metrics.valAccuracy > 0.9, JSON.stringify(trained.result.metrics));

    const compress = await system.request('POST', '/v1/jobs/compress', {
      source: trained.result.model,
      quantize: { dtype: 'uint8' },
    });
    assert.equal(compress.status, 202, JSON.stringify(compress.body));
    const compressed = await system.waitForJob(compress.body.id);
    assert.equal(compressed.state, 'completed', JSON.stringify(compressed));
    const small = compressed.result.model as { name: string; version: number };

    const ROWS = 200_000;
    const inferSet = await upload('big.csv', table(ROWS, 2));
    const infer = await system.request('POST', '/v1/jobs/infer', {
      model: small,
      input: { dataset: { id: inferSet } },
    });
    assert.equal(infer.status, 202, JSON.stringify(infer.body));
    // Mid-run: the worker running it dies without a chance to clean up (its lock lapses; the job goes on elsewhere).
    await killItsWorker(infer.body.id, 'the infer job to predict its first rows', (view) => view.progress?.rows > 0);
    const inferred = await system.waitForJob(infer.body.id);
    assert.equal(inferred.state, 'completed', JSON.stringify(inferred));
    assert.equal(inferred.result.rows, ROWS);
    const output = await system.fetch(`/v1/jobs/${infer.body.id}/output`);
    assert.equal(output.status, 200);
    const lines = (await output.text()).trimEnd().split('\n');
    assert.equal(lines.length, ROWS, 'one line per input row, each exactly once');
    assert.ok(lines.every((l) => 'classIndex' in (JSON.parse(l) as object)));

    const predict = await system.request('POST', `/v1/models/${small.name}/versions/${small.version}/predict`, {
      instances: [Array.from({ length: FEATURES }, () => 0.5)],
    });
    assert.equal(predict.status, 200, JSON.stringify(predict.body));
    assert.equal(predict.body.predictions.length, 1);

    // Downloads: a 302 to a presigned URL of the bucket (DOWNLOAD_REDIRECT_SECONDS), which serves the bytes.
    const redirect = await system.fetch(`/v1/models/${small.name}/versions/${small.version}/model.json`, {
      redirect: 'manual',
    });
    assert.equal(redirect.status, 302);
    const location = redirect.headers.get('location') ?? '';
    assert.ok(location.startsWith(s3.endpoint), location);
    const fetched = await fetch(location);
    assert.equal(fetched.status, 200);
    assert.ok('modelTopology' in ((await fetched.json()) as object));

    // Nothing of it in any process's own folder: the bucket is the only store.
    for (const dir of dirs) assert.deepEqual(await filesUnder(dir), [], dir);
  });

  it('refuses to start on a bucket that does not exist, naming the setting', async () => {
    const child = spawn(process.execPath, [API_MAIN], {
      env: {
        ...process.env,
        ...s3.appEnv(),
        S3_BUCKET: 'no-such-bucket',
        QUEUE_PREFIX: `tqtest-fleet-${process.pid}`,
        PORT: '0',
        API_METRICS_PORT: '0',
        // Configured: without it the API would make a first-start admin key in the shared Redis.
        TQ_ADMIN_KEY: randomBytes(32).toString('base64url'),
        ARTIFACT_DIR: join(tmpdir(), `tq-fleet-nobucket-${process.pid}`),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.notEqual(code, 0, out);
    assert.match(out, /S3_BUCKET/);
    assert.match(out, /no-such-bucket.*does not exist/);
  });

  it('with the store away: a 503 with Retry-After naming the blob store, not Redis', async () => {
    await s3.stop();
    const form = new FormData();
    form.append('file', new Blob(['a,label\n1,x\n']), 'away.csv');
    const res = await system.fetch('/v1/datasets', { method: 'POST', body: form });
    const body = (await res.json()) as { message: string };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.match(body.message, /the blob store s3:\/\/tq-fleet\/.* is unreachable/);
    assert.doesNotMatch(body.message, /Redis/);
    assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal((await system.fetch('/health')).status, 200, 'Redis is still there');
  });
});
