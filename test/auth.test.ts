import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { ApiKeyStore, secretHash } from '@tq/auth';
import { createRedisClient, type RedisClient } from '@tq/queue';
import { freePort } from '../tools/free-port';
import { API_MAIN, startApp, stopProcess, waitForHttp } from '../tools/processes';
import { TestSystem, deleteKeys } from './support/system';
import { waitFor } from './support/wait-for';
import { irisTrain } from './support/iris-train';

const IRIS_TRAIN = irisTrain({ epochs: 2, batchSize: 32 });

interface Created {
  id: string;
  key: string;
}

/**
 * API keys and roles against real API processes (issue 11): every way a key can be wrong is a 401
 * that asks for credentials and names the header, revocation reaches a second replica through
 * Redis pub/sub (not the cache TTL: AUTH_CACHE_SECONDS is 300 here), each role gets what it may do
 * and no more, and the settings that would leave the API open refuse to start.
 */
describe('API keys and roles', () => {
  let system: TestSystem;
  let redis: RedisClient;
  let store: ApiKeyStore;
  let model: { name: string; version: number };
  const created: Created[] = [];

  const call = async (path: string, authorization: string | undefined, init: RequestInit = {}, base?: string) => {
    const headers = new Headers(init.headers);
    if (authorization !== undefined) headers.set('authorization', authorization);
    const res = await fetch((base ?? system.url) + path, { ...init, headers });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const bearer = (key: string) => `Bearer ${key}`;
  const postJson = (path: string, authorization: string | undefined, body: unknown) =>
    call(path, authorization, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  /** A key made by the admin over the API. */
  async function createKey(role: string, extra: Record<string, unknown> = {}): Promise<Created> {
    const res = await system.request('POST', '/v1/keys', { name: `test ${role}`, tenant: 'default', role, ...extra });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.key, /^tq_[a-f0-9]{12}_[A-Za-z0-9_-]{43}$/);
    assert.equal(res.body.prefix, `tq_${res.body.id}_`);
    created.push(res.body);
    return res.body;
  }

  /** A refused key: 401, a browser is asked to log in, the body names the header, and no secret comes back. */
  function assertUnauthorized(res: { status: number; headers: Headers; text: string }, sent: string | undefined) {
    assert.equal(res.status, 401, res.text);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="TensorQueue"/);
    const body = JSON.parse(res.text) as { message: string; issues: Array<{ field: string }> };
    assert.equal(body.issues[0]?.field, 'Authorization');
    assert.match(body.message, /^Authorization: /);
    // What came after the scheme (none for a bare "Bearer", whose word the reason itself uses).
    const token = sent?.match(/^\S+\s+(\S+)/)?.[1];
    if (token) {
      assert.ok(!res.text.includes(token), 'the answer repeats the key sent');
      const secret = token.split('_').slice(2).join('_');
      if (secret) assert.ok(!res.text.includes(secret), 'the answer repeats the secret');
    }
    for (const key of [...created.map((c) => c.key), system.adminKey!])
      assert.ok(!res.text.includes(key.slice(-20)), 'the answer holds a secret');
    return body.message;
  }

  before(async () => {
    // A long cache: a revoke that reaches another replica within the test came by pub/sub, not by expiry.
    system = await TestSystem.start({ workers: 1, env: { AUTH_CACHE_SECONDS: '300' } });
    redis = createRedisClient({ REDIS_URL: system.redisUrl });
    store = new ApiKeyStore(redis, system.prefix);
    const trained = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN);
    assert.equal(trained.status, 202, JSON.stringify(trained.body));
    const job = await system.waitForJob(trained.body.id);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    model = job.result.model;
  });
  after(async () => {
    redis?.disconnect();
    await system?.stop();
  });

  it('/health needs no key; every other route without one is a 401', async () => {
    assert.equal((await call('/health', undefined)).status, 200);
    for (const path of [
      '/v1/jobs',
      '/v1/models',
      '/v1/datasets',
      '/v1/keys',
      '/metrics',
      '/docs-json',
      '/admin/queues',
    ])
      assertUnauthorized(await call(path, undefined), undefined);
    assertUnauthorized(await postJson('/v1/jobs/train', undefined, IRIS_TRAIN), undefined);
  });

  it('refuses malformed keys, naming what is wrong', async () => {
    for (const header of [
      'Bearer',
      'Bearer not-a-key',
      'Bearer tq_0123456789ab_short',
      'Token tq_0123456789ab_' + 'A'.repeat(43),
      'Basic ' + Buffer.from('no-colon').toString('base64'),
    ])
      assert.match(
        assertUnauthorized(await call('/v1/jobs', header), header),
        /Authorization: (expected|is not an API key)/,
      );
  });

  it('refuses forged keys: an unknown id, and a known id with a wrong secret', async () => {
    const unknown = bearer(`tq_${'0'.repeat(12)}_${'A'.repeat(43)}`);
    assert.match(assertUnauthorized(await call('/v1/jobs', unknown), unknown), /unknown API key/);
    const real = await createKey('member');
    const wrong = bearer(`tq_${real.id}_${'B'.repeat(43)}`);
    assert.match(assertUnauthorized(await call('/v1/jobs', wrong), wrong), /unknown API key/);
    // One character off at the end of the secret: no less unknown.
    const last = real.key.at(-1) === 'A' ? 'B' : 'A';
    const nearly = bearer(real.key.slice(0, -1) + last);
    assert.match(assertUnauthorized(await call('/v1/jobs', nearly), nearly), /unknown API key/);
    assert.equal((await call('/v1/jobs', bearer(real.key))).status, 200, 'the real key works');
  });

  it('refuses an expired key', async () => {
    // The schema's shortest lifetime is 60 s: a key that already expired is written to the system's
    // Redis the way the API writes keys.
    const { key } = await store.create(
      { name: 'expired', tenant: 'default', role: 'member', expiresAt: new Date(Date.now() - 1000) },
      new Date(Date.now() - 120_000),
    );
    assert.match(assertUnauthorized(await call('/v1/jobs', bearer(key)), bearer(key)), /expired/);
    // One that has not expired yet works (the API computes its expiry).
    const living = await createKey('member', { expiresInSeconds: 60 });
    assert.ok(living.key);
    assert.equal((await call('/v1/jobs', bearer(living.key))).status, 200);
  });

  it('a revoked key is refused at once by the API that revoked it and, through pub/sub, by a second API', async () => {
    const { url: second } = await system.addApi();
    const key = await createKey('member');
    // Both replicas have checked (and cached) the key.
    assert.equal((await call('/v1/jobs', bearer(key.key))).status, 200);
    assert.equal((await call('/v1/jobs', bearer(key.key), {}, second)).status, 200);
    const revoked = await system.request('DELETE', `/v1/keys/${key.id}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.ok(revoked.body.revokedAt);
    assert.equal(revoked.body.key, undefined);
    assert.match(assertUnauthorized(await call('/v1/jobs', bearer(key.key)), bearer(key.key)), /revoked/);
    const refused = await waitFor(
      'the second API to refuse the revoked key',
      async () => {
        const res = await call('/v1/jobs', bearer(key.key), {}, second);
        return res.status === 200 ? undefined : res;
      },
      30_000,
    );
    assert.match(assertUnauthorized(refused, bearer(key.key)), /revoked/);
    assert.equal((await system.request('DELETE', '/v1/keys/0123456789ab')).status, 404);
    assert.equal((await system.request('DELETE', '/v1/keys/not-an-id')).status, 400);
  });

  it('a viewer reads and predicts but cannot submit, cancel or manage keys (403)', async () => {
    const viewer = bearer((await createKey('viewer')).key);
    assert.equal((await call('/v1/jobs', viewer)).status, 200);
    assert.equal((await call(`/v1/models/${model.name}/versions/${model.version}`, viewer)).status, 200);
    const predict = await postJson(`/v1/models/${model.name}/versions/${model.version}/predict`, viewer, {
      instances: [[5.1, 3.5, 1.4, 0.2]],
    });
    assert.equal(predict.status, 200, predict.text);
    const submit = await postJson('/v1/jobs/train', viewer, IRIS_TRAIN);
    assert.equal(submit.status, 403, submit.text);
    assert.match(submit.text, /Authorization: this route needs the member role; the key is a viewer/);
    assert.equal((await call('/v1/jobs/train-x', viewer, { method: 'DELETE' })).status, 403);
    assert.equal((await call('/v1/keys', viewer)).status, 403);
    assert.equal((await call('/metrics', viewer)).status, 200, 'a viewer reads the metrics');
  });

  it('a member submits jobs but cannot manage keys', async () => {
    const member = bearer((await createKey('member')).key);
    const submit = await postJson('/v1/jobs/train', member, IRIS_TRAIN);
    assert.equal(submit.status, 202, submit.text);
    assert.equal((await call('/v1/keys', member)).status, 403);
    const create = await postJson('/v1/keys', member, { name: 'mine', tenant: 'default', role: 'admin' });
    assert.equal(create.status, 403, create.text);
    assert.equal((await call(`/v1/keys/${created[0]!.id}`, member, { method: 'DELETE' })).status, 403);
  });

  it('an admin lists keys with their prefixes, never a secret or a hash', async () => {
    const admin = await createKey('admin');
    // A created admin is an admin: it lists the keys too.
    const res = await call('/v1/keys', bearer(admin.key));
    assert.equal(res.status, 200, res.text);
    const items = (JSON.parse(res.text) as { items: Array<Record<string, unknown>> }).items;
    assert.ok(
      created.every((c) => items.some((i) => i.id === c.id)),
      'every created key is listed',
    );
    for (const item of items) {
      assert.deepEqual(
        Object.keys(item).filter(
          (k) => !['id', 'prefix', 'name', 'tenant', 'role', 'createdAt', 'expiresAt', 'revokedAt'].includes(k),
        ),
        [],
      );
      assert.equal(item.prefix, `tq_${String(item.id)}_`);
    }
    for (const c of created) {
      const secret = c.key.split('_').slice(2).join('_');
      assert.ok(!res.text.includes(secret), `the listing holds the secret of ${c.id}`);
      assert.ok(!res.text.includes(secretHash(secret).toString('hex')), `the listing holds the hash of ${c.id}`);
    }
    // What Redis holds is the hash, not the secret.
    const stored = await store.get(admin.id);
    assert.equal(stored?.hash, secretHash(admin.key.split('_').slice(2).join('_')).toString('hex'));
    assert.ok(!JSON.stringify(stored).includes(admin.key.split('_').slice(2).join('_')));
  });

  describe('the dashboard in Chromium', () => {
    let browser: Browser;
    before(async () => {
      browser = await chromium.launch({
        executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    });
    after(() => browser?.close());

    const open = async (password?: string) => {
      const context = await browser.newContext(
        password === undefined ? {} : { httpCredentials: { username: 'anyone', password } },
      );
      const page = await context.newPage();
      const res = await page.goto(`${system.url}/admin/queues`);
      return { context, page, status: res?.status() };
    };

    it('opens for an admin key given at the login prompt (the key is the password)', async () => {
      const admin = await createKey('admin');
      const { context, page, status } = await open(admin.key);
      assert.equal(status, 200);
      await page.getByText('train', { exact: true }).first().waitFor({ timeout: 15_000 });
      await context.close();
    });

    it('asks a browser to log in without a key or with a wrong one, and answers 403 to a member', async () => {
      // Chromium answers a Basic challenge with the context's credentials. With none it gives up on the
      // page (a person gets the login prompt); a refused key ends on the 401 page.
      await assert.rejects(open(), /ERR_INVALID_AUTH_CREDENTIALS/);
      const forged = await open(`tq_${'0'.repeat(12)}_${'A'.repeat(43)}`);
      assert.equal(forged.status, 401);
      assert.match(await forged.page.content(), /Authorization: unknown API key/);
      await forged.context.close();
      const member = await open((await createKey('member')).key);
      assert.equal(member.status, 403);
      assert.match(await member.page.content(), /this page needs the admin role; the key is a member/);
      await member.context.close();
    });
  });
});

describe('settings that would leave the API open refuse to start', () => {
  /** Starts the API with `env` and resolves with its exit code and output once it exits by itself. */
  async function startFails(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
    const child = startApp(API_MAIN, 'api', { QUEUE_PREFIX: `tqtest-authcfg-${process.pid}`, PORT: '0', ...env }, true);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, out };
  }

  it('AUTH=off on a non-loopback HOST: exits non-zero naming AUTH', async () => {
    const { code, out } = await startFails({ AUTH: 'off', HOST: '0.0.0.0' });
    assert.notEqual(code, 0, out);
    assert.match(out, /AUTH: "off" is only allowed on a loopback HOST/);
  });

  it('a TQ_ADMIN_KEY of fewer than 32 characters: exits non-zero naming it, without printing it', async () => {
    const short = 'short-admin-key-0123456789';
    const { code, out } = await startFails({ TQ_ADMIN_KEY: short });
    assert.notEqual(code, 0, out);
    assert.match(out, /TQ_ADMIN_KEY: 32 to 256 printable ASCII characters/);
    assert.ok(!out.includes(short), 'the key is not printed');
  });

  it('AUTH=off on loopback: no key needed, every caller is an admin', async () => {
    const system = await TestSystem.start({ workers: 0, env: { AUTH: 'off' } });
    try {
      assert.equal((await fetch(`${system.url}/v1/jobs`)).status, 200);
      assert.equal((await fetch(`${system.url}/v1/keys`)).status, 200);
    } finally {
      await system.stop();
    }
  });
});

describe('an API started without TQ_ADMIN_KEY (docker compose, Kubernetes)', () => {
  const prefix = `tqtest-firstkey-${process.pid}`;
  const children: ChildProcess[] = [];
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tq-firstkey-'));
  });
  after(async () => {
    await Promise.all(children.map((c) => stopProcess(c, 'SIGTERM', 5000)));
    await deleteKeys(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `${prefix}:*`);
    await rm(dir, { recursive: true, force: true });
  });

  /** An API of `prefix` on a free port, and its output so far. */
  async function startApi(): Promise<{ url: string; output: () => string }> {
    const port = await freePort();
    const env = {
      QUEUE_PREFIX: prefix,
      PORT: String(port),
      ARTIFACT_DIR: dir,
      API_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    };
    const child = startApp(API_MAIN, 'api', { ...env, TQ_ADMIN_KEY: undefined }, true, dir);
    children.push(child);
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/health`);
    return { url, output: () => out };
  }

  it('makes an admin key once, logs it once, and the key works; a second replica makes none', async () => {
    const first = await startApi();
    const key = await waitFor(
      'the first-start key in the log',
      async () => /created the admin API key (tq_[a-f0-9]{12}_[A-Za-z0-9_-]{43})/.exec(first.output())?.[1],
    );
    const res = await fetch(`${first.url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200);
    const { items } = (await res.json()) as { items: Array<{ role: string; name: string }> };
    assert.deepEqual(
      items.map((i) => [i.role, i.name]),
      [['admin', 'first admin (created at first start)']],
    );
    const second = await startApi();
    assert.equal((await fetch(`${second.url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
    assert.ok(!second.output().includes('created the admin API key'), second.output());
    assert.equal(first.output().split('created the admin API key').length, 2, 'logged once');
  });
});
