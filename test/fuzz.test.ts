import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { TestSystem } from './support/system';

/** Requests per run, and at once: the bound is a count, not a clock. */
const REQUESTS = 3_000;
const CONCURRENCY = 8;
/** The same requests every run; FUZZ_SEED=<n> explores others. */
const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD'];
const IRIS_LAYERS = [
  { type: 'dense', units: 4, activation: 'relu', inputShape: [4] },
  { type: 'dense', units: 3, activation: 'softmax' },
];
const CSV = [
  'a,b,c,d,label',
  ...Array.from({ length: 30 }, (_, i) => `${i},${i % 3},${i % 5},${i % 7},k${i % 3}`),
].join('\n');
/** Path tricks and odd names, already percent-encoded where a raw request needs it. */
const HOSTILE = [
  '..',
  '.',
  '%2e%2e',
  '..%2f..%2fetc%2fpasswd',
  '%252e%252e%252f',
  '..\\..\\',
  ';',
  '%00',
  'a%00b',
  '%2fetc%2fpasswd',
  '%EF%BC%8E%EF%BC%8E',
  '%C0%AE%C0%AE',
  '%',
  '%zz',
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  '-1',
  '0',
  '1e309',
  'NaN',
  '9007199254740993',
  '00000000-0000-0000-0000-000000000000',
  'x'.repeat(300),
  '%F0%9F%92%A9',
  '%E2%80%AE',
];

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/**
 * Thousands of generated requests over every route the API documents (its OpenAPI document, so a
 * new route is covered without touching this file) and garbage paths: random methods, hostile and
 * valid-looking path parameters, random queries, JSON and non-JSON bodies, odd headers. No answer
 * may be a 5xx, and the API and the worker must still be up at the end.
 */
describe('fuzz: generated requests over every route', () => {
  let system: TestSystem;
  const valid = { name: ['fz'], version: ['1'], id: [] as string[], file: ['model.json', 'weights.bin', 'model.onnx'] };
  const bodies: unknown[] = [];
  before(async () => {
    system = await TestSystem.start({
      workers: 1,
      // Small budgets: a generated request that is accepted queues only a small job.
      env: { MAX_TRAIN_WORK: '300', MAX_MODEL_PARAMS: '5000', MAX_SMALL_JSON_BODY_BYTES: '65536' },
    });
    // Real things to name: a trained version, an infer job, an uploaded dataset.
    const trained = await system.request('POST', '/v1/jobs/train', {
      model: { name: 'fz', layers: IRIS_LAYERS },
      dataset: { builtin: 'iris' },
      fit: { epochs: 1 },
    });
    assert.equal(trained.status, 202, JSON.stringify(trained.body));
    assert.equal((await system.waitForJob(trained.body.id)).state, 'completed');
    const infer = await system.request('POST', '/v1/jobs/infer', {
      model: { name: 'fz', version: 1 },
      input: { instances: [[1, 2, 3, 4]] },
    });
    assert.equal((await system.waitForJob(infer.body.id)).state, 'completed');
    const form = new FormData();
    form.append('file', new Blob([CSV]), 'fz.csv');
    form.append('labelColumn', 'label');
    const upload = await system.fetch('/v1/datasets', { method: 'POST', body: form });
    const dataset = (await upload.json()) as { id: string };
    assert.equal(upload.status, 201, JSON.stringify(dataset));
    valid.id.push(trained.body.id, infer.body.id, dataset.id, 'iris', 'mnist');
    bodies.push(
      { model: { name: 'fz2', layers: IRIS_LAYERS }, dataset: { builtin: 'iris' }, fit: { epochs: 1 } },
      { model: { name: 'fz3', from: { name: 'fz', version: 1 } }, dataset: { id: dataset.id }, fit: { epochs: 1 } },
      { model: { name: 'fz', version: 1 }, input: { instances: [[1, 2, 3, 4]] } },
      { model: { name: 'fz', version: 1 }, input: { dataset: { id: dataset.id } } },
      { source: { name: 'fz', version: 1 }, quantize: { dtype: 'uint8' } },
      { instances: [[1, 2, 3, 4]] },
      { records: [{ a: 1, b: 2, c: 3, d: 4 }] },
    );
  });
  after(() => system.stop());

  it(`answers ${REQUESTS} generated requests with no 5xx and leaves every process up`, async () => {
    const openapi = (await system.request('GET', '/docs-json')).body as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(openapi.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => ({ path, method: method.toUpperCase() })),
    );
    assert.ok(routes.length >= 15, `${routes.length} routes in /docs-json`);
    const requests = fc.sample(requestArbitrary(routes, valid, bodies), { numRuns: REQUESTS, seed: SEED });

    const statuses = new Map<number, number>();
    const failures: string[] = [];
    let next = 0;
    const sendAll = async () => {
      while (next < requests.length) {
        const req = requests[next++]!;
        const res = await system.raw(req.method, req.path, {
          headers: req.headers,
          ...(req.body === undefined ? {} : { body: req.body }),
        });
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500 || res.status === 0)
          failures.push(
            `${req.method} ${req.path} ${JSON.stringify(req.headers)} ${String(req.body).slice(0, 300)} -> ${res.status} ${res.text.slice(0, 300)}`,
          );
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, sendAll));

    const counts = [...statuses.entries()].sort(([a], [b]) => a - b);
    const fivexx = counts.filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0);
    console.log(`fuzz: ${requests.length} requests sent (seed ${SEED}, ${routes.length} documented routes)`);
    console.log(`fuzz: status counts ${counts.map(([s, c]) => `${s}: ${c}`).join(', ')}`);
    console.log(`fuzz: 5xx = ${fivexx}`);
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} requests answered 5xx`);
    assert.ok((statuses.get(200) ?? 0) + (statuses.get(202) ?? 0) > 0, 'some requests were valid');
    // Every process is still up and the API still healthy.
    for (const worker of system.workers) assert.equal(worker.exitCode ?? worker.signalCode, null, 'a worker exited');
    assert.ok(system.apiPid !== undefined);
    process.kill(system.apiPid, 0); // throws when the API process is gone
    assert.equal((await system.request('GET', '/health')).status, 200);
  });
});

type Valid = Record<'name' | 'version' | 'id' | 'file', string[]>;

function requestArbitrary(
  routes: { path: string; method: string }[],
  valid: Valid,
  bodies: unknown[],
): fc.Arbitrary<FuzzRequest> {
  const segment = (kind: keyof Valid) =>
    fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...valid[kind]) },
      { weight: 3, arbitrary: fc.constantFrom(...HOSTILE) },
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(encodeURIComponent) },
      { weight: 1, arbitrary: fc.webSegment() },
    );
  const documented = fc
    .record({
      route: fc.constantFrom(...routes),
      name: segment('name'),
      version: segment('version'),
      id: segment('id'),
      file: segment('file'),
      otherMethod: fc.option(fc.constantFrom(...METHODS), { freq: 5 }),
      slash: fc.constantFrom('', '', '', '/'),
    })
    .map(({ route, otherMethod, slash, ...params }) => ({
      method: otherMethod ?? route.method,
      path:
        route.path.replace(/\{(\w+)\}/g, (_, p: string) => (params as Record<string, string>)[p] ?? params.id) + slash,
    }));
  const garbage = fc.record({
    method: fc.constantFrom(...METHODS),
    path: fc.oneof(
      fc.webPath().map((p) => `/${p.replace(/^\/+/, '')}`),
      fc.constantFrom('/v1', '/v1/', '/v1/jobs/', '//v1//jobs', '/admin/queues/api/queues', '/docs/', '/metrics/x'),
      fc
        .tuple(
          fc.constantFrom('/v1/jobs/', '/v1/models/', '/v1/datasets/', '/admin/queues/'),
          fc.constantFrom(...HOSTILE),
        )
        .map(([a, b]) => a + b),
    ),
  });
  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 2,
      arbitrary: fc
        .dictionary(
          fc.constantFrom('type', 'state', 'page', 'pageSize', 'wait', '__proto__', 'a[b]', 'x'),
          fc.oneof(fc.constantFrom('1', '-1', 'train', 'completed', 'false', '1e9', ''), fc.string({ maxLength: 10 })),
          { maxKeys: 3 },
        )
        .map((d) => `?${new URLSearchParams(d).toString()}`),
    },
  );
  const jsonBody = fc.oneof(
    fc.constantFrom(...bodies).map((b) => JSON.stringify(b)),
    fc
      .tuple(fc.constantFrom(...bodies), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })))
      .map(([b, extra]) => JSON.stringify({ ...(b as object), ...extra })),
    fc.json({ maxDepth: 4 }),
    fc.constantFrom(
      '{"__proto__":{"x":1}}',
      '[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
      '{',
      '',
      'null',
      '"x"',
    ),
    fc.nat({ max: 20_000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
  );
  const body = fc.oneof(
    { weight: 3, arbitrary: fc.record({ type: fc.constant('application/json'), body: jsonBody }) },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constantFrom(
          'text/plain',
          'application/x-www-form-urlencoded',
          'multipart/form-data; boundary=xyz',
          'multipart/form-data',
          'application/json; charset=latin1',
          'application/octet-stream',
        ),
        body: fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
          fc.constant(
            '--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\na,b\n1,2\r\n--xyz--\r\n',
          ),
        ),
      }),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
  const headers = fc.record(
    {
      'x-request-id': fc.oneof(fc.constantFrom('abc', 'x'.repeat(200)), fc.string({ maxLength: 20 })),
      'idempotency-key': fc.oneof(fc.constantFrom('k1', 'k2'), fc.string({ maxLength: 20 })),
      accept: fc.constantFrom('*/*', 'text/event-stream', 'application/json', 'text/html'),
      range: fc.constantFrom('bytes=0-1', 'bytes=100000-', 'bytes=-5', 'bytes=x'),
      origin: fc.constantFrom('https://evil.example', 'null'),
    },
    { requiredKeys: [] },
  );
  return fc
    .record({
      target: fc.oneof({ weight: 5, arbitrary: documented }, { weight: 1, arbitrary: garbage }),
      query,
      body,
      headers,
    })
    .map(({ target, query, body, headers }) => ({
      method: target.method,
      path: target.path + query,
      headers: { ...cleanHeaders(headers), ...(body ? { 'content-type': body.type } : {}) },
      ...(body && target.method !== 'HEAD' ? { body: body.body } : {}),
    }));
}

/** Header values Node's client can send (no control characters): the fuzz is of the API, not of the client. */
function cleanHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([k, v]) => [k, [...v].filter((c) => c >= ' ' && c <= '~').join('')]),
  );
}
