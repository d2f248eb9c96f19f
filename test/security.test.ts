import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { link, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_TENANT, localJobMeta } from '@tq/contracts';
import { profileDatasetJob } from '@tq/jobs';
import { ArtifactStore, DatasetStore, ModelRegistry } from '@tq/storage';
import { DEFAULT_TABLE_LIMITS } from '@tq/tables';
import { TestSystem } from './support/system';

const SECRET = `secret-${randomUUID()}`;
const MODEL_JSON = JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [] });
const IRIS_LAYERS = [
  { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
  { type: 'dense', units: 3, activation: 'softmax' },
];
const train = (patch: Record<string, unknown> = {}) => ({
  model: { name: 'sec', layers: IRIS_LAYERS },
  dataset: { builtin: 'iris' },
  fit: { epochs: 1 },
  ...patch,
});
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An error body: the status's shape, the request id of the header, and nothing of the server's insides. */
function assertCleanError(
  res: { status: number; headers: Headers | Record<string, unknown>; text: string },
  /** The request itself carried paths (a path trick): only the server's own folders count. */
  serverPaths?: string[],
): any {
  const header = res.headers instanceof Headers ? res.headers.get('x-request-id') : res.headers['x-request-id'];
  assert.ok(typeof header === 'string' && header.length > 0, `no X-Request-Id on a ${res.status}`);
  const body = JSON.parse(res.text) as { statusCode: number; requestId: string; message: unknown };
  assert.equal(body.statusCode, res.status, res.text);
  assert.equal(body.requestId, header, 'the body names the request id of the header');
  assert.doesNotMatch(res.text, /\n\s+at |\bat [\w.<>]+ \(|node:internal|\.js:\d+/, `a stack in ${res.text}`);
  if (serverPaths) for (const path of serverPaths) assert.ok(!res.text.includes(path), `a path in ${res.text}`);
  else assert.doesNotMatch(res.text, /\/tmp\/|\/work\/|\/home\/|\/var\/|\.data\//, `a path in ${res.text}`);
  assert.doesNotMatch(res.text, /ENOENT|EACCES|ELOOP|ENOTDIR/, res.text);
  assert.doesNotMatch(res.text, /SyntaxError|TypeError|ZodError|is not a function|Cannot read prop/, res.text);
  return body;
}

describe('hardened HTTP: headers, CORS off, request ids, clean errors, per-route body limits', () => {
  let system: TestSystem;
  let secretDir: string;
  const apiLines: string[] = [];
  before(async () => {
    secretDir = await mkdtemp(join(tmpdir(), 'tq-secret-'));
    await writeFile(join(secretDir, 'secret'), SECRET);
    system = await TestSystem.start({
      workers: 0,
      env: {
        MAX_SMALL_JSON_BODY_BYTES: '2048',
        MAX_JSON_BODY_BYTES: '65536',
        MAX_PREDICT_BODY_BYTES: '32768',
        MAX_TRAIN_WORK: '1000',
        MAX_CLASSES: '5',
        LOG_LEVEL: 'log',
      },
    });
    system.onApiLine((line) => apiLines.push(line));
    // The tests' requests are the config admin's, in the default tenant: its view of the store.
    const registry = new ModelRegistry(new ArtifactStore(system.artifactDir).forTenant(DEFAULT_TENANT));
    for (const name of ['iris', 'linked', 'hard'])
      await registry.register(
        name,
        {
          inputShape: [4],
          featureCount: 4,
          classes: ['a', 'b', 'c'],
          lineage: { kind: 'trained' },
          weightDtype: 'float32',
        },
        async (out) => {
          await out.put('model.json', MODEL_JSON);
          await out.put('weights.bin', 'weights');
        },
      );
    // A version whose metadata is corrupt: reading it is a server fault, a 500.
    await registry.register(
      'broken',
      { inputShape: [4], featureCount: 4, classes: [], lineage: { kind: 'trained' }, weightDtype: 'float32' },
      async () => {},
    );
    await registry.store.blobs.put(registry.store.modelKey({ name: 'broken', version: 1 }, 'metadata.json'), '{ not');
    // Links planted in the artifact folder, each to the secret outside it.
    const fileOf = async (name: string, file: string) => {
      const meta = await registry.getVersion({ name, version: 1 });
      const parts = meta.artifactSet ? [meta.artifactSet, file] : [file];
      return join(system.artifactDir, ...registry.store.modelKey(meta, ...parts).split('/'));
    };
    const linked = await fileOf('linked', 'weights.bin');
    await rm(linked);
    await symlink(join(secretDir, 'secret'), linked);
    const hard = await fileOf('hard', 'weights.bin');
    await rm(hard);
    await link(join(secretDir, 'secret'), hard);
    // A symlinked model folder: "alias" is "iris", seen through a link.
    await symlink(join(system.tenantDir(), 'models', 'iris'), join(system.tenantDir(), 'models', 'alias'));
  });
  after(async () => {
    await system.stop();
    await rm(secretDir, { recursive: true, force: true });
  });

  it('sends security headers, no X-Powered-By, and an X-Request-Id on every response', async () => {
    for (const path of ['/health', '/v1/models', '/v1/nothing-here']) {
      const res = await system.fetch(path);
      await res.arrayBuffer();
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN', path);
      assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/, path);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'(;|$)/, path);
      assert.equal(res.headers.get('x-powered-by'), null, path);
      assert.match(res.headers.get('x-request-id') ?? '', UUID, path);
    }
    // The client's id when it is a plain token; anything else is replaced by a UUID.
    const own = await system.fetch('/health', { headers: { 'x-request-id': 'client-42.a:b' } });
    assert.equal(own.headers.get('x-request-id'), 'client-42.a:b');
    const odd = await system.fetch('/health', { headers: { 'x-request-id': 'a b/../<script>' } });
    assert.match(odd.headers.get('x-request-id') ?? '', UUID);
  });

  it('sends no CORS header when CORS_ORIGINS is unset, to a preflight or a request', async () => {
    const preflight = await system.fetch('/v1/jobs/train', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    await preflight.arrayBuffer();
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    assert.equal(preflight.headers.get('access-control-allow-methods'), null);
    const get = await system.fetch('/v1/models', { headers: { origin: 'https://evil.example' } });
    await get.arrayBuffer();
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('access-control-allow-origin'), null);
  });

  it('limits small routes, predicts and infer jobs to their own JSON body limits, naming each', async () => {
    const padding = 'x'.repeat(3000);
    for (const [method, path] of [
      ['POST', '/v1/jobs/train'],
      ['POST', '/v1/jobs/compress'],
      ['DELETE', `/v1/jobs/${randomUUID()}`],
      ['GET', '/v1/models'],
    ] as const) {
      const res = await system.raw(method, path, {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ padding }),
      });
      assert.equal(res.status, 413, `${method} ${path}: ${res.text}`);
      const body = assertCleanError(res);
      assert.equal(body.issues[0].field, '(body)');
      assert.match(body.message, /limit of 2048 bytes \(MAX_SMALL_JSON_BODY_BYTES\)/);
    }
    // The same 3 KB on the data routes is read (and refused for what it says, not its size).
    for (const path of [
      '/v1/jobs/infer',
      '/v1/models/iris/versions/1/predict',
      '/V1/Models/iris/versions/1/predict/',
    ]) {
      const res = await system.request('POST', path, { padding });
      assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    }
    const bigPredict = await system.request('POST', '/v1/models/iris@1/predict', { padding: 'x'.repeat(40_000) });
    assert.equal(bigPredict.status, 413);
    assert.match(bigPredict.body.message, /limit of 32768 bytes \(MAX_PREDICT_BODY_BYTES\)/);
    // The same 40 KB is within an infer job's limit; 70 KB is not.
    assert.equal((await system.request('POST', '/v1/jobs/infer', { padding: 'x'.repeat(40_000) })).status, 400);
    const big = await system.request('POST', '/v1/jobs/infer', { padding: 'x'.repeat(70_000) });
    assert.equal(big.status, 413);
    assert.match(big.body.message, /limit of 65536 bytes \(MAX_JSON_BODY_BYTES\)/);
  });

  it('answers every class of error with the request id and no stack, path or internal message, and logs the id', async () => {
    const json = { 'content-type': 'application/json' };
    const cases: [number, string, string, Record<string, string>, string?][] = [
      [400, 'POST', '/v1/jobs/train', json, '{"model": '],
      [400, 'POST', '/v1/jobs/train', json, JSON.stringify(train({ fit: { epochs: -1 } }))],
      [404, 'GET', '/v1/no/such/route', {}],
      [404, 'GET', '/v1/models/nope', {}],
      [404, 'GET', `/v1/jobs/${randomUUID()}/output`, {}],
      [404, 'GET', '/v1/models/iris/versions/1/metadata.json', {}],
      [413, 'POST', '/v1/jobs/train', json, JSON.stringify({ pad: 'x'.repeat(5000) })],
      [415, 'POST', '/v1/jobs/train', { 'content-type': 'application/json; charset=latin1' }, '{}'],
      [500, 'GET', '/v1/models/broken/versions/1', {}],
    ];
    for (const [status, method, path, headers, body] of cases) {
      const res = await system.raw(method, path, { headers, ...(body === undefined ? {} : { body }) });
      assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
      const parsed = assertCleanError(res);
      if (status === 500) {
        assert.equal(parsed.message, 'internal error');
        await waitForLine(apiLines, parsed.requestId);
        assert.ok(
          apiLines.some((l) => l.includes(parsed.requestId) && l.includes(path)),
          'the error log line names the request id and the route',
        );
      }
    }
    // 409: the same Idempotency-Key with another body.
    const key = { 'content-type': 'application/json', 'idempotency-key': `k-${randomUUID()}` };
    const first = await system.raw('POST', '/v1/jobs/train', { headers: key, body: JSON.stringify(train()) });
    assert.equal(first.status, 202, first.text);
    const again = await system.raw('POST', '/v1/jobs/train', {
      headers: key,
      body: JSON.stringify(train({ fit: { epochs: 2 } })),
    });
    assert.equal(again.status, 409, again.text);
    assertCleanError(again);
    // The client's request id is the one in the body.
    const own = await system.raw('GET', '/v1/models/nope', { headers: { 'x-request-id': 'trace-1' } });
    assert.equal(assertCleanError(own).requestId, 'trace-1');
  });

  it('serves no file through a link planted in the artifact folder (symlinked file, hard link, symlinked folder)', async () => {
    const ok = await system.fetch('/v1/models/iris/versions/1/weights.bin');
    assert.deepEqual([ok.status, await ok.text()], [200, 'weights'], 'the route serves a real artifact');
    for (const path of [
      '/v1/models/linked/versions/1/weights.bin',
      '/v1/models/hard/versions/1/weights.bin',
      '/v1/models/alias/versions/1/weights.bin',
      '/v1/models/alias/versions/1',
    ]) {
      const res = await system.fetch(path);
      const text = await res.text();
      assert.equal(res.status, 404, `${path}: ${text}`);
      assert.ok(!text.includes(SECRET), path);
      assertCleanError({ status: res.status, headers: res.headers, text });
    }
    const list = await system.request('GET', '/v1/models');
    assert.ok(!list.body.some((m: { name: string }) => m.name === 'alias'), 'a linked model folder is not listed');
  });

  it('refuses every path trick in every name, id and file parameter with a 4xx, and reads nothing outside the store', async () => {
    const up = `..%2f..%2f..%2f..%2f${basename(secretDir)}%2fsecret`;
    const tricks = [
      '..',
      '.',
      '...',
      '..%2f',
      '%2e%2e',
      '%2e%2e%2f%2e%2e%2fsecret',
      '%252e%252e%252f%252e%252e%252fsecret',
      '%25252e%25252e',
      up,
      up.replaceAll('%2f', '/'),
      up.replaceAll('%2f', '%5c'),
      '..\\..\\secret',
      '\\..\\',
      'iris;..%2fsecret',
      ';',
      'iris%3b',
      '%2fetc%2fpasswd',
      encodeURIComponent(join(secretDir, 'secret')),
      'iris%00',
      '%00',
      'model.json%00.png',
      '%EF%BC%8E%EF%BC%8E%EF%BC%8Fsecret',
      '%E2%80%A4%E2%80%A4',
      '%C0%AE%C0%AE%C0%AF',
      'iris%E2%88%95..%E2%88%95secret',
      '%',
      '%zz',
    ];
    const id = randomUUID();
    const routes: [string, (t: string) => string][] = [
      ['GET', (t) => `/v1/models/${t}`],
      ['GET', (t) => `/v1/models/${t}/versions/1`],
      ['GET', (t) => `/v1/models/iris/versions/${t}`],
      ['GET', (t) => `/v1/models/${t}/versions/1/model.json`],
      ['GET', (t) => `/v1/models/iris/versions/${t}/model.json`],
      ['GET', (t) => `/v1/models/iris/versions/1/${t}`],
      ['POST', (t) => `/v1/models/${t}/versions/1/predict`],
      ['GET', (t) => `/v1/datasets/${t}`],
      ['GET', (t) => `/v1/jobs/${t}`],
      ['DELETE', (t) => `/v1/jobs/${t}`],
      ['GET', (t) => `/v1/jobs/${t}/output`],
      ['GET', (t) => `/v1/jobs/${t}/errors`],
      ['GET', (t) => `/v1/jobs/${t}/events`],
      ['GET', (t) => `/v1/jobs/${id}${t}/output`],
    ];
    let sent = 0;
    for (const [method, route] of routes)
      for (const trick of tricks) {
        const res = await system.raw(method, route(trick), {
          headers: { 'content-type': 'application/json' },
          ...(method === 'POST' ? { body: '{"instances":[[1,2,3,4]]}' } : {}),
        });
        sent++;
        const where = `${method} ${route(trick)}: ${res.status} ${res.text.slice(0, 200)}`;
        assert.ok(res.status >= 400 && res.status < 500, where);
        assert.ok(!res.text.includes(SECRET), where);
        assertCleanError(res, [system.artifactDir, process.cwd()]);
      }
    // The same tricks, decoded, in every body field that names something stored.
    const decoded = tricks.map((t) => {
      try {
        return decodeURIComponent(t);
      } catch {
        return t;
      }
    });
    const bodies: [string, (t: string) => unknown][] = [
      ['/v1/jobs/train', (t) => train({ model: { name: t, layers: IRIS_LAYERS } })],
      ['/v1/jobs/train', (t) => train({ dataset: { id: t } })],
      ['/v1/jobs/train', (t) => train({ model: { name: 'x', from: { name: t, version: 1 } } })],
      ['/v1/jobs/compress', (t) => ({ source: { name: t, version: 1 }, quantize: { dtype: 'uint8' } })],
      ['/v1/jobs/infer', (t) => ({ model: { name: t, version: 1 }, input: { instances: [[1, 2, 3, 4]] } })],
      ['/v1/jobs/infer', (t) => ({ model: { name: 'iris', version: 1 }, input: { dataset: { id: t } } })],
    ];
    for (const [path, body] of bodies)
      for (const trick of [...decoded, ...tricks]) {
        const res = await system.request('POST', path, body(trick));
        sent++;
        assert.ok(res.status >= 400 && res.status < 500, `${path} ${JSON.stringify(trick)}: ${res.status}`);
        assert.ok(!JSON.stringify(res.body).includes(SECRET));
      }
    assert.ok(sent > 500, `${sent} requests`);
  });

  it('refuses __proto__, constructor and prototype keys at any depth on every JSON route, and pollutes nothing', async () => {
    const poisons = [
      '{"__proto__": {"polluted": "yes"}}',
      '{"constructor": {"prototype": {"polluted": "yes"}}}',
      '{"model": {"name": "p", "__proto__": {"polluted": "yes"}}}',
      '{"fit": {"epochs": 1, "constructor": {"prototype": {"polluted": "yes"}}}}',
      '{"input": {"instances": [[1,2,3,4]], "deep": [{"a": {"__proto__": {"polluted": "yes"}}}]}}',
      '{"model": {"name": "p", "\\u005f_proto__": {"polluted": "yes"}}}',
    ];
    const routes: [string, string][] = [
      ['POST', '/v1/jobs/train'],
      ['POST', '/v1/jobs/compress'],
      ['POST', '/v1/jobs/infer'],
      ['POST', '/v1/models/iris/versions/1/predict'],
      ['DELETE', `/v1/jobs/${randomUUID()}`],
    ];
    for (const [method, path] of routes)
      for (const body of poisons) {
        const res = await system.raw(method, path, { headers: { 'content-type': 'application/json' }, body });
        assert.equal(res.status, 400, `${method} ${path} ${body}: ${res.text}`);
        const parsed = assertCleanError(res);
        assert.match(parsed.issues[0].field, /(__proto__|constructor|prototype)$/, res.text);
      }
    // A JSON form field of an upload: the same rule.
    for (const columns of ['{"__proto__": "ignore"}', '{"a": "ignore", "constructor": "numeric"}']) {
      const form = new FormData();
      form.append('file', new Blob(['a,b,label\n1,2,x\n3,4,y\n']), 't.csv');
      form.append('columns', columns);
      const res = await system.fetch('/v1/datasets', { method: 'POST', body: form });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      const body = assertCleanError({ status: res.status, headers: res.headers, text });
      assert.equal(body.issues[0].field, 'columns', text);
      assert.match(body.issues[0].reason, /the key "(__proto__|constructor)" is not allowed/);
    }
    // Nothing inherited a "polluted": a fresh submit works and its view has no injected field.
    const ok = await system.request('POST', '/v1/jobs/train', train({ model: { name: 'clean', layers: IRIS_LAYERS } }));
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    const view = await system.request('GET', `/v1/jobs/${ok.body.id}`);
    assert.equal(view.status, 200);
    assert.equal(view.body.polluted, undefined);
    assert.equal(view.body.result?.polluted, undefined);
    const list = await system.request('GET', '/v1/jobs');
    assert.ok(!JSON.stringify(list.body).includes('polluted'));
  });

  it('refuses resource bombs with a 4xx naming the field and the budget, before any job is queued', async () => {
    const before = (await system.request('GET', '/v1/jobs?pageSize=100')).body.total as number;
    // 10^9 parameters.
    const huge = await system.request(
      'POST',
      '/v1/jobs/train',
      train({
        model: {
          name: 'huge',
          layers: [
            { type: 'dense', units: 50_000, activation: 'relu', inputShape: [4] },
            { type: 'dense', units: 20_000, activation: 'relu' },
            { type: 'dense', units: 3, activation: 'softmax' },
          ],
        },
      }),
    );
    assert.equal(huge.status, 413, JSON.stringify(huge.body));
    assert.equal(huge.body.issues[0].field, 'model.layers');
    assert.match(huge.body.message, /1000330003 parameters exceed .*\(MAX_MODEL_PARAMS\)/);
    // epochs × rows over MAX_TRAIN_WORK (iris: 150 rows).
    const long = await system.request('POST', '/v1/jobs/train', train({ fit: { epochs: 7 } }));
    assert.equal(long.status, 413, JSON.stringify(long.body));
    assert.equal(long.body.issues[0].field, 'fit.epochs');
    assert.match(long.body.message, /\(MAX_TRAIN_WORK\)/);
    // A label of 6 classes over MAX_CLASSES=5, from the stored profile.
    const six = await storedTable(system, sixClasses(), 'label');
    const classes = await system.request(
      'POST',
      '/v1/jobs/train',
      train({
        model: { name: 'six', layers: [{ type: 'dense', units: 6, activation: 'softmax' }] },
        dataset: { id: six },
      }),
    );
    assert.equal(classes.status, 413, JSON.stringify(classes.body));
    assert.equal(classes.body.issues[0].field, 'dataset.id');
    assert.match(classes.body.message, /6 classes exceed the limit of 5 \(MAX_CLASSES\)/);
    // A label of over 1,000 distinct values (a 10^6-class label is refused the same way): its profile fails.
    const many = await storedTable(system, manyClasses(1_500), 'label').catch((err: Error) => err);
    assert.ok(many instanceof Error && /label.*too many classes/.test(many.message), String(many));
    const after = (await system.request('GET', '/v1/jobs?pageSize=100')).body.total as number;
    assert.equal(after, before, 'no job was queued');
  });
});

describe('CORS_ORIGINS: only the listed origins', () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({
      workers: 0,
      env: { CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' },
    });
  });
  after(() => system.stop());

  const preflight = (origin: string) =>
    system.fetch('/v1/jobs/train', {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });

  it('answers a preflight and a request from a listed origin with its origin, an unlisted one with none', async () => {
    for (const origin of ['https://app.example.com', 'http://localhost:5173']) {
      const res = await preflight(origin);
      await res.arrayBuffer();
      assert.ok(res.status < 300, String(res.status));
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /POST/);
      const get = await system.fetch('/v1/models', { headers: { origin } });
      await get.arrayBuffer();
      assert.equal(get.headers.get('access-control-allow-origin'), origin);
      assert.match(get.headers.get('access-control-expose-headers') ?? '', /X-Request-Id/);
    }
    for (const origin of ['https://evil.example', 'https://app.example.com.evil.example', 'null']) {
      const res = await preflight(origin);
      await res.arrayBuffer();
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
      const get = await system.fetch('/v1/models', { headers: { origin } });
      await get.arrayBuffer();
      assert.equal(get.headers.get('access-control-allow-origin'), null, origin);
    }
  });
});

async function waitForLine(lines: string[], needle: string): Promise<void> {
  for (let i = 0; i < 100 && !lines.some((l) => l.includes(needle)); i++) await new Promise((r) => setTimeout(r, 50));
}

function sixClasses(): string {
  const rows = Array.from({ length: 60 }, (_, i) => `${i % 7},${i % 5},${i % 3},${i % 2},c${i % 6}`);
  return ['a,b,c,d,label', ...rows].join('\n');
}

function manyClasses(n: number): string {
  const rows = Array.from({ length: n }, (_, i) => `${i},${i * 2},class-${i}`);
  return ['a,b,label', ...rows].join('\n');
}

/** A CSV stored and profiled in-process (the profile-dataset job's body), as a worker would. */
async function storedTable(system: TestSystem, csv: string, labelColumn: string): Promise<string> {
  const datasets = new DatasetStore(new ArtifactStore(system.artifactDir).forTenant(DEFAULT_TENANT));
  const info = await datasets.create({ name: 't.csv', format: 'csv', labelColumn }, Readable.from([csv]), 1 << 20);
  const hooks = {
    jobId: 'local',
    meta: localJobMeta(),
    signal: new AbortController().signal,
    onProgress: async () => undefined,
    log: () => undefined,
  };
  const job = { datasetId: info.id, format: 'csv' as const, labelColumn };
  await profileDatasetJob(job, { datasets, limits: DEFAULT_TABLE_LIMITS }, hooks);
  return info.id;
}
