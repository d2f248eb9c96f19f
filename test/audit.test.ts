import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import type { AuditEntry } from '@tq/contracts';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';
import { irisTrain } from './support/iris-train';

const TRAIN = irisTrain({ epochs: 1 });

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const LOOPBACK = /^(::ffff:)?127\.0\.0\.1$|^::1$/;

/**
 * The audit log through the real API on real Redis (no worker: submitted jobs stay waiting): each
 * kind of state-changing request and auth failure shows up with its fields, only admins read it,
 * filters and paging hold, and neither a key's secret nor an Authorization header is ever stored.
 */
describe('audit log', () => {
  let system: TestSystem;
  let redis: Redis;
  const keys = {} as Record<'viewer' | 'member', { id: string; key: string }>;

  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    redis = new Redis(system.redisUrl);
    for (const role of ['viewer', 'member'] as const) {
      const res = await system.request('POST', '/v1/keys', { name: role, tenant: 'team-a', role });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      keys[role] = { id: res.body.id, key: res.body.key };
    }
  });
  after(async () => {
    redis?.disconnect();
    await system?.stop();
  });

  const page = async (query: Record<string, string | number> = {}) => {
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
    const res = await system.request('GET', `/v1/audit?${qs.toString()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as { items: AuditEntry[]; nextCursor?: string };
  };
  /** Entries are written once the response is done, in the background: poll for the one expected. */
  const entry = (what: string, match: (e: AuditEntry) => boolean) =>
    waitFor(what, async () => (await page({ limit: 1000 })).items.find(match), 30_000);
  const byRequestId = (requestId: string) => entry(requestId, (e) => e.requestId === requestId);
  const asAdmin = (requestId: string, init: RequestInit = {}): RequestInit => ({
    ...init,
    headers: { 'x-request-id': requestId, ...(init.headers as Record<string, string> | undefined) },
  });

  it('records a submit and a cancel: who, tenant, role, action, target, result, time, client', async () => {
    const before = Date.now();
    const res = await system.fetch(
      '/v1/jobs/train',
      asAdmin('audit-submit', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(TRAIN),
      }),
    );
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const submit = await byRequestId('audit-submit');
    assert.deepEqual(
      { ...submit, id: undefined, time: undefined, client: undefined },
      {
        id: undefined,
        time: undefined,
        client: undefined,
        requestId: 'audit-submit',
        keyId: 'config-admin',
        tenant: 'default',
        role: 'admin',
        action: 'POST /v1/jobs/train',
        target: { id },
        result: 202,
      },
    );
    assert.match(submit.client ?? '', LOOPBACK);
    assert.ok(Date.parse(submit.time) >= before && Date.parse(submit.time) <= Date.now(), submit.time);

    const cancel = await system.fetch(`/v1/jobs/${id}`, asAdmin('audit-cancel', { method: 'DELETE' }));
    assert.equal(cancel.status, 200);
    const cancelled = await byRequestId('audit-cancel');
    assert.equal(cancelled.action, 'DELETE /v1/jobs/:id');
    assert.deepEqual(cancelled.target, { id });
    assert.equal(cancelled.result, 200);
    assert.equal(cancelled.keyId, 'config-admin');
  });

  it('records a dataset upload with the dataset it created', async () => {
    const form = new FormData();
    form.append('file', new Blob(['a,b,label\n1,2,x\n3,4,y\n']), 'tiny.csv');
    form.append('labelColumn', 'label');
    const res = await system.fetch('/v1/datasets?wait=false', asAdmin('audit-upload', { method: 'POST', body: form }));
    assert.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const upload = await byRequestId('audit-upload');
    assert.equal(upload.action, 'POST /v1/datasets');
    assert.deepEqual(upload.target, { id });
    assert.equal(upload.result, 202);
  });

  it('records a key create and revoke, and never the key itself', async () => {
    const created = await system.fetch(
      '/v1/keys',
      asAdmin('audit-key-create', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'short-lived', tenant: 'team-b', role: 'member' }),
      }),
    );
    assert.equal(created.status, 201);
    const key = (await created.json()) as { id: string; key: string };
    const revoked = await system.fetch(`/v1/keys/${key.id}`, asAdmin('audit-key-revoke', { method: 'DELETE' }));
    assert.equal(revoked.status, 200);
    // A client that sends a whole key where an id goes (and as its request id): 400, and redacted.
    const mistaken = await system.fetch(`/v1/keys/${key.key}`, asAdmin(key.key, { method: 'DELETE' }));
    assert.equal(mistaken.status, 400);

    const create = await byRequestId('audit-key-create');
    assert.equal(create.action, 'POST /v1/keys');
    assert.deepEqual(create.target, { id: key.id });
    assert.equal(create.result, 201);
    const revoke = await byRequestId('audit-key-revoke');
    assert.equal(revoke.action, 'DELETE /v1/keys/:id');
    assert.deepEqual(revoke.target, { id: key.id });
    const redacted = `tq_${key.id}_[redacted]`;
    const mistake = await byRequestId(redacted);
    assert.deepEqual([mistake.target, mistake.result], [{ id: redacted }, 400]);

    // Neither the answer nor the stream itself holds a secret or a header.
    const secret = key.key.slice(`tq_${key.id}_`.length);
    for (const text of [
      JSON.stringify(await page({ limit: 1000 })),
      JSON.stringify(await redis.xrange(`${system.prefix}:audit`, '-', '+')),
    ]) {
      assert.ok(!text.includes(secret), 'a key secret is in the audit log');
      assert.ok(!text.includes(system.adminKey!), 'TQ_ADMIN_KEY is in the audit log');
      for (const { key: k } of Object.values(keys)) assert.ok(!text.includes(k), 'a key is in the audit log');
      assert.ok(!/bearer|authorization/i.test(text), 'an Authorization header is in the audit log');
    }
  });

  it('records a dashboard action, with its route and the queue it acted on', async () => {
    for (const action of ['pause', 'resume']) {
      const res = await system.fetch(
        `/admin/queues/api/queues/train/${action}`,
        asAdmin(`audit-dashboard-${action}`, { method: 'PUT' }),
      );
      assert.equal(res.status, 200, await res.text());
      const recorded = await byRequestId(`audit-dashboard-${action}`);
      assert.equal(recorded.action, `PUT /admin/queues/api/queues/:queueName/${action}`);
      assert.deepEqual(recorded.target, { queueName: 'train' });
      assert.deepEqual([recorded.keyId, recorded.role, recorded.result], ['config-admin', 'admin', 200]);
    }
  });

  it('records a 401 without a caller, on a write and on a read', async () => {
    const noKey = await fetch(`${system.url}/v1/jobs/train`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': 'audit-401-write' },
      body: JSON.stringify(TRAIN),
    });
    assert.equal(noKey.status, 401);
    const forged = await fetch(`${system.url}/v1/jobs`, {
      headers: { ...bearer(`tq_${keys.viewer.id}_${'A'.repeat(43)}`), 'x-request-id': 'audit-401-read' },
    });
    assert.equal(forged.status, 401);
    const dashboard = await fetch(`${system.url}/admin/queues/api/queues/train/pause`, {
      method: 'PUT',
      headers: { 'x-request-id': 'audit-401-dashboard' },
    });
    assert.equal(dashboard.status, 401);

    const write = await byRequestId('audit-401-write');
    assert.deepEqual(
      [write.action, write.result, write.keyId, write.tenant, write.role],
      ['POST /v1/jobs/train', 401, undefined, undefined, undefined],
    );
    const read = await byRequestId('audit-401-read');
    assert.deepEqual([read.action, read.result, read.keyId], ['GET /v1/jobs', 401, undefined]);
    // Refused by the middleware in front of bull-board: no route matched, so the path itself.
    const board = await byRequestId('audit-401-dashboard');
    assert.deepEqual([board.action, board.result], ['PUT /admin/queues/api/queues/train/pause', 401]);
  });

  it('records a body refused before routing and a path nothing serves, by their paths', async () => {
    const badJson = await system.fetch(
      '/v1/jobs/train?x=1',
      asAdmin('audit-bad-body', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' }),
    );
    assert.equal(badJson.status, 400);
    const unknown = await system.fetch('/v1/nothing/here', asAdmin('audit-404', { method: 'POST' }));
    assert.equal(unknown.status, 404);
    const refused = await byRequestId('audit-bad-body');
    assert.deepEqual([refused.action, refused.result, refused.target], ['POST /v1/jobs/train', 400, undefined]);
    const missing = await byRequestId('audit-404');
    assert.deepEqual([missing.action, missing.result], ['POST /v1/nothing/here', 404]);
  });

  it('leaves out a prediction (a POST that changes nothing) unless it is refused', async () => {
    const predict = (requestId: string, headers: Record<string, string> = {}) =>
      system.fetch('/v1/models/no-such-model/versions/1/predict', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId, ...headers },
        body: JSON.stringify({ instances: [[1]] }),
      });
    assert.equal((await predict('audit-predict')).status, 404);
    assert.equal((await predict('audit-predict-401', { authorization: 'Bearer nope' })).status, 401);
    // Entries are written in the order responses close: once the later 401 is there, so would the 404 be.
    await byRequestId('audit-predict-401');
    const items = (await page({ limit: 1000 })).items;
    assert.equal(
      items.find((e) => e.requestId === 'audit-predict'),
      undefined,
    );
  });

  it("records a viewer's 403 with the viewer's key, tenant and role", async () => {
    const res = await fetch(`${system.url}/v1/jobs/train`, {
      method: 'POST',
      headers: { ...bearer(keys.viewer.key), 'content-type': 'application/json', 'x-request-id': 'audit-403' },
      body: JSON.stringify(TRAIN),
    });
    assert.equal(res.status, 403);
    const denied = await byRequestId('audit-403');
    assert.deepEqual(
      [denied.action, denied.result, denied.keyId, denied.tenant, denied.role],
      ['POST /v1/jobs/train', 403, keys.viewer.id, 'team-a', 'viewer'],
    );
  });

  it('is for admins only: a member and a viewer get 403 (itself recorded)', async () => {
    for (const role of ['member', 'viewer'] as const) {
      const res = await fetch(`${system.url}/v1/audit`, {
        headers: { ...bearer(keys[role].key), 'x-request-id': `audit-read-${role}` },
      });
      assert.equal(res.status, 403, role);
      const denied = await byRequestId(`audit-read-${role}`);
      assert.deepEqual([denied.action, denied.keyId, denied.role], ['GET /v1/audit', keys[role].id, role]);
    }
    const anonymous = await fetch(`${system.url}/v1/audit`);
    assert.equal(anonymous.status, 401);
  });

  it('filters by tenant, key, action, result and time, and pages by cursor', async () => {
    const all = (await page({ limit: 1000 })).items;
    assert.ok(all.length >= 15, `${all.length} entries`);
    const ids = all.map((e) => e.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => compareIds(b, a)),
      'newest first',
    );

    const check = async (query: Record<string, string>, expected: (e: AuditEntry) => boolean) => {
      const got = (await page({ ...query, limit: 1000 })).items.map((e) => e.id);
      const want = all.filter(expected).map((e) => e.id);
      assert.ok(want.length > 0, `the fixture has entries for ${JSON.stringify(query)}`);
      // Entries recorded since `all` was read (this test's own reads are not: GETs that succeed) may lead.
      assert.deepEqual(got.slice(got.length - want.length), want, JSON.stringify(query));
      assert.ok(got.every((id) => all.find((e) => e.id === id) === undefined || want.includes(id)));
    };
    await check({ tenant: 'team-a' }, (e) => e.tenant === 'team-a');
    await check({ keyId: keys.viewer.id }, (e) => e.keyId === keys.viewer.id);
    await check({ action: 'v1/KEYS' }, (e) => e.action.includes('/v1/keys'));
    await check({ result: '4xx' }, (e) => e.result >= 400 && e.result < 500);
    await check({ result: '401' }, (e) => e.result === 401);
    const middle = all[Math.floor(all.length / 2)]!;
    await check({ until: middle.time }, (e) => Date.parse(e.time) <= Date.parse(middle.time));
    await check({ since: middle.time }, (e) => Date.parse(e.time) >= Date.parse(middle.time));

    // Paging: every entry once, in order, the same as one big page.
    const paged: string[] = [];
    let cursor: string | undefined;
    const until = all[0]!.time;
    do {
      const p = await page({ limit: 4, until, ...(cursor ? { cursor } : {}) });
      assert.ok(p.items.length <= 4);
      paged.push(...p.items.map((e) => e.id));
      cursor = p.nextCursor;
    } while (cursor);
    assert.deepEqual(
      paged,
      (await page({ limit: 1000, until })).items.map((e) => e.id),
    );
    assert.deepEqual(paged.slice(paged.length - ids.length), ids);

    const bad = await system.request('GET', '/v1/audit?limit=1001&result=4x&cursor=x');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.issues.map((i: { field: string }) => i.field).sort(), ['cursor', 'limit', 'result']);
  });

  it('is append-only: no route edits or deletes entries', async () => {
    const before = (await page({ limit: 1000 })).items;
    for (const method of ['DELETE', 'PUT', 'PATCH', 'POST'])
      assert.equal((await system.request(method, '/v1/audit')).status, 404, method);
    const afterwards = (await page({ limit: 1000 })).items;
    for (const e of before)
      assert.deepEqual(
        afterwards.find((x) => x.id === e.id),
        e,
      );
  });

  it('answers the request when the write fails, and counts the failure', async () => {
    const stream = `${system.prefix}:audit`;
    const saved = `${system.prefix}:audit-saved`;
    // A key of the wrong type where the stream goes: every XADD fails (WRONGTYPE), the API is fine.
    await redis.rename(stream, saved);
    await redis.set(stream, 'not a stream');
    try {
      const res = await system.request('DELETE', '/v1/jobs/no-such-job');
      assert.equal(res.status, 404);
      await waitFor('tq_audit_write_failures_total', async () => {
        const text = await (await system.fetch('/metrics')).text();
        const m = /^tq_audit_write_failures_total (\d+)/m.exec(text);
        return m && Number(m[1]) >= 1 ? true : undefined;
      });
    } finally {
      await redis.del(stream);
      await redis.rename(saved, stream);
    }
  });
});

/** Stream ids compare by their two numbers. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
