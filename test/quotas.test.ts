import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LocalBlobStore } from '@tq/storage';
import { stopProcess } from '../tools/processes';
import { TestSystem } from './support/system';
import { tenantClient } from './support/tenant-keys';
import { waitFor } from './support/wait-for';
import { irisTrain } from './support/iris-train';

const TRAIN = irisTrain({ epochs: 1 });
/** Runs long enough to be seen active and killed (it is cancelled at the end). */
const LONG_TRAIN = {
  model: { name: 'digits-long', layers: [{ type: 'dense', units: 10, activation: 'softmax', inputShape: [784] }] },
  dataset: { builtin: 'mnist' },
  fit: { epochs: 1000, batchSize: 32 },
};

/** The 429 of a quota: Retry-After and a body naming the quota, the figure and the limit. */
function assertQuota429(
  res: { status: number; body: any; headers: Headers },
  quota: string,
  used: number | undefined,
  limit: number,
): void {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'Retry-After: whole seconds');
  assert.equal(res.body.quota.name, quota);
  if (used !== undefined) assert.equal(res.body.quota.used, used);
  assert.equal(res.body.quota.limit, limit);
  assert.equal(res.body.issues[0].field, quota);
  assert.match(res.body.message, new RegExp(`^${quota}: `));
}

describe('tenant quotas: queued jobs, requests per second, stored bytes (no worker)', () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
  });
  after(async () => {
    await system?.stop();
  });

  it('admits jobs up to maxQueuedJobs, one 429 for the racing third, and frees the slot on cancel', async () => {
    const qa = await tenantClient(system, 'qa');
    const put = await system.request('PUT', '/v1/tenants/qa/quotas', { maxQueuedJobs: 2 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.quotas.maxQueuedJobs, 2);
    assert.deepEqual(put.body.overridden, ['maxQueuedJobs']);

    // Three at once for two slots: the count is one script, so exactly one is refused.
    const answers = await Promise.all([1, 2, 3].map(() => qa.request('POST', '/v1/jobs/train', TRAIN)));
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    assert.equal(accepted.length, 2, JSON.stringify(answers.map((a) => a.body)));
    assert.equal(refused.length, 1);
    assertQuota429(refused[0]!, 'maxQueuedJobs', 2, 2);
    assert.match(refused[0]!.body.message, /TENANT_MAX_QUEUED_JOBS/);

    const usage = await qa.request('GET', '/v1/tenants/qa/usage');
    assert.equal(usage.status, 200);
    assert.equal(usage.body.usage.queuedJobs, 2);
    assert.equal(usage.body.quotas.maxQueuedJobs, 2);

    // Other tenants are not affected by qa's limit.
    assert.equal((await system.request('POST', '/v1/jobs/train', TRAIN)).status, 202);

    const cancelled = await qa.request('DELETE', `/v1/jobs/${accepted[0]!.body.id}`);
    assert.equal(cancelled.body.state, 'cancelled');
    assert.equal((await qa.request('GET', '/v1/tenants/qa/usage')).body.usage.queuedJobs, 1);
    assert.equal((await qa.request('POST', '/v1/jobs/train', TRAIN)).status, 202, 'the freed slot is usable');
    assertQuota429(await qa.request('POST', '/v1/jobs/train', TRAIN), 'maxQueuedJobs', 2, 2);
  });

  it('shows usage to admins and the tenant, 404 to another tenant, and lets only admins set quotas', async () => {
    const own = await tenantClient(system, 'qb', 'viewer');
    const other = await tenantClient(system, 'qc');
    assert.equal((await own.request('GET', '/v1/tenants/qb/usage')).status, 200);
    assert.equal((await system.request('GET', '/v1/tenants/qb/usage')).status, 200);
    assert.equal((await other.request('GET', '/v1/tenants/qb/usage')).status, 404);
    assert.equal((await other.request('PUT', '/v1/tenants/qc/quotas', { maxQueuedJobs: 1000 })).status, 403);
    const bad = await system.request('PUT', '/v1/tenants/qb/quotas', { maxQueuedJobs: -1, unknown: 1 });
    assert.equal(bad.status, 400);
    // null (or leaving it out) goes back to the configured default.
    await system.request('PUT', '/v1/tenants/qb/quotas', { maxActiveJobs: 3 });
    const reset = await system.request('PUT', '/v1/tenants/qb/quotas', { maxActiveJobs: null });
    assert.deepEqual(reset.body.overridden, []);
  });

  it('refuses requests over the tenant rate with 429 and Retry-After; /health and other tenants are not counted', async () => {
    const rl = await tenantClient(system, 'rl');
    await system.request('PUT', '/v1/tenants/rl/quotas', { maxRequestsPerSecond: 0.01, requestBurst: 3 });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await rl.request('GET', '/v1/jobs'));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 429],
    );
    const refused = answers[3]!;
    assertQuota429(refused, 'maxRequestsPerSecond', undefined, 0.01);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal((await fetch(`${system.url}/health`)).status, 200);
    assert.equal((await system.request('GET', '/v1/jobs')).status, 200, 'the admin tenant has its own bucket');
  });

  it('refuses uploads and model-writing jobs of a tenant at maxStoredBytes', async () => {
    const st = await tenantClient(system, 'st');
    // 1000 bytes under the tenant's prefix, as tenancy stores its objects.
    await new LocalBlobStore(system.artifactDir).put('tenants/st/probe.bin', Buffer.alloc(1000));
    await system.request('PUT', '/v1/tenants/st/quotas', { maxStoredBytes: 500 });
    assertQuota429(await st.request('POST', '/v1/jobs/train', TRAIN), 'maxStoredBytes', 1000, 500);
    const form = new FormData();
    form.append('file', new Blob(['a,b\n1,2\n']), 'small.csv');
    const upload = await system.fetch('/v1/datasets', {
      method: 'POST',
      headers: { authorization: `Bearer ${st.key}` },
      body: form,
    });
    const body: any = await upload.json();
    assertQuota429({ status: upload.status, body, headers: upload.headers }, 'maxStoredBytes', 1000, 500);
    assert.equal((await st.request('GET', '/v1/tenants/st/usage')).body.usage.storedBytes, 1000);
    // Inference writes no model: not refused.
    const infer = await st.request('POST', '/v1/jobs/infer', {
      model: { name: 'nope', version: 1 },
      input: { instances: [[1]] },
    });
    assert.notEqual(infer.status, 429);
    await system.request('PUT', '/v1/tenants/st/quotas', { maxStoredBytes: 5000 });
    assert.equal((await st.request('POST', '/v1/jobs/train', TRAIN)).status, 202);
  });
});

describe('tenant quotas: active jobs on workers', () => {
  let system: TestSystem;
  before(async () => {
    // Two jobs at once per worker: only the quota keeps a tenant's second job waiting.
    system = await TestSystem.start({
      workers: 0,
      workerEnv: { WORKER_CONCURRENCY: '2', TENANT_ACTIVE_RETRY_MS: '200' },
    });
  });
  after(async () => {
    await system?.stop();
  });

  it("runs a tenant's jobs one at a time at maxActiveJobs 1, without using attempts, and frees both counters", async () => {
    const ac = await tenantClient(system, 'ac');
    await system.request('PUT', '/v1/tenants/ac/quotas', { maxActiveJobs: 1 });
    const a = (await ac.request('POST', '/v1/jobs/train', TRAIN)).body.id as string;
    const b = (await ac.request('POST', '/v1/jobs/train', TRAIN)).body.id as string;
    system.addWorker();
    const [va, vb] = [await system.waitForJob(a), await system.waitForJob(b)];
    assert.equal(va.state, 'completed');
    assert.equal(vb.state, 'completed');
    const [first, second] = Date.parse(va.startedAt) < Date.parse(vb.startedAt) ? [va, vb] : [vb, va];
    // The slot is freed when the first's processor returns; BullMQ stamps finishedAt once it has
    // stored the result, a few ms later (seen: the second started 1 ms before it). Run together,
    // they would overlap by most of the first's run.
    const overlapMs = Date.parse(first.finishedAt) - Date.parse(second.startedAt);
    const firstRanMs = Date.parse(first.finishedAt) - Date.parse(first.startedAt);
    assert.ok(
      overlapMs < Math.min(100, firstRanMs / 2),
      `the second started (${second.startedAt}) after the first finished (${first.finishedAt}, started ${first.startedAt})`,
    );
    assert.equal(second.attempts, 1, 'being put back is not an attempt');
    const usage = await waitFor('both counters to free', async () => {
      const u = (await ac.request('GET', '/v1/tenants/ac/usage')).body.usage;
      return u.queuedJobs === 0 && u.activeJobs === 0 ? u : undefined;
    });
    assert.deepEqual(usage, { queuedJobs: 0, activeJobs: 0, storedBytes: 0, apiReplicas: 1 });
  });

  it("frees a killed worker's active slot when its lease ends, and the job's next attempt takes it again", async () => {
    const kl = await tenantClient(system, 'kl');
    await system.request('PUT', '/v1/tenants/kl/quotas', { maxActiveJobs: 1 });
    // One worker, the one killed below (the earlier test's goes first, before it can take the job).
    await Promise.all(system.workers.map((w) => stopProcess(w, 'SIGKILL')));
    const submitted = await kl.request('POST', '/v1/jobs/train', LONG_TRAIN);
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const id = submitted.body.id as string;
    const worker = system.addWorker();
    await waitFor('the job to run on the new worker', async () => {
      const v = (await kl.request('GET', `/v1/jobs/${id}`)).body;
      return v.state === 'active' && v.worker?.endsWith(`:${worker.pid}`) ? v : undefined;
    });
    await waitFor('the slot to be taken', async () =>
      (await kl.request('GET', '/v1/tenants/kl/usage')).body.usage.activeJobs === 1 ? true : undefined,
    );
    worker.kill('SIGKILL');
    await waitFor("the dead worker's lease to end", async () =>
      (await kl.request('GET', '/v1/tenants/kl/usage')).body.usage.activeJobs === 0 ? true : undefined,
    );
    system.addWorker();
    let seen: unknown;
    const retried = await waitFor(
      'the job to run again',
      async () => {
        const v = (await kl.request('GET', `/v1/jobs/${id}`)).body;
        seen = v;
        return v.state === 'active' && v.attempts === 1 && v.workerAlive ? v : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(seen)}`);
    });
    assert.equal(retried.attempts, 1, 'one run lost its worker');
    // BullMQ shows the job active before its processor takes the tenant's slot: wait for that, as above.
    await waitFor('the next attempt to take the slot', async () =>
      (await kl.request('GET', '/v1/tenants/kl/usage')).body.usage.activeJobs === 1 ? true : undefined,
    );
    await kl.request('DELETE', `/v1/jobs/${id}`);
    await system.waitForJob(id);
    const usage = await waitFor('the counters to free after the cancel', async () => {
      const u = (await kl.request('GET', '/v1/tenants/kl/usage')).body.usage;
      return u.queuedJobs === 0 && u.activeJobs === 0 ? u : undefined;
    });
    assert.equal(usage.activeJobs, 0);
  });
});

describe("a tenant's request rate over two API replicas", () => {
  let system: TestSystem;
  let secondUrl: string;
  before(async () => {
    system = await TestSystem.start({ workers: 0, env: { API_REPLICA_TTL_MS: '600' } });
    secondUrl = (await system.addApi()).url;
  });
  after(async () => {
    await system?.stop();
  });

  it('each replica allows half of the rate and burst: the tenant gets its quota in all, not twice it', async () => {
    const urls = [system.url, secondUrl];
    const admin = { authorization: `Bearer ${system.adminKey!}` };
    // Both replicas count each other (heartbeats every 200 ms), as the usage of any tenant shows.
    for (const url of urls)
      await waitFor(`${url} to count two API replicas`, async () => {
        const usage: any = await (await fetch(`${url}/v1/tenants/default/usage`, { headers: admin })).json();
        return usage.usage?.apiReplicas === 2 ? true : undefined;
      });
    const rr = await tenantClient(system, 'rr');
    // 0.01/s: no token comes back while the test runs; a burst of 6 is 3 on each replica.
    await system.request('PUT', '/v1/tenants/rr/quotas', { maxRequestsPerSecond: 0.01, requestBurst: 6 });
    const get = (url: string) => fetch(`${url}/v1/jobs`, { headers: { authorization: `Bearer ${rr.key}` } });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) for (const url of urls) statuses.push((await get(url)).status);
    // One replica alone would allow 6, two of them 12 without sharing.
    assert.equal(statuses.filter((s) => s === 200).length, 6, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 429).length, 14, JSON.stringify(statuses));
    const refused: any = await (await get(secondUrl)).json();
    assert.match(refused.message, /each of the 2 API replicas allows 1\/2 of it/);
  });
});
