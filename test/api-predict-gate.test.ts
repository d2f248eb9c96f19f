import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { predictGate } from '../apps/api/src/common/predict-gate';
import { waitFor } from './support/wait-for';

const PREDICT = '/v1/models/digits/versions/1/predict';

/** An express app behind `gate` whose predicts are held until the test answers them. */
async function gatedServer(gate: ReturnType<typeof predictGate>) {
  const held: (() => void)[] = [];
  let reached = 0;
  const app = express();
  app.use(gate);
  app.post(/.*\/(predict|explain)$/, (_req, res) => {
    reached++;
    held.push(() => res.json({ ok: true }));
  });
  app.get('/v1/jobs/:id', (_req, res) => res.json({ id: 'x' }));
  const server = createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    base,
    get reached() {
      return reached;
    },
    post: (path: string) =>
      fetch(base + path, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
    /** Waits for one held predict and answers it. */
    answerOne: async () => (await waitFor('a predict at its handler', async () => held.shift()))(),
    inLine: (n: number) => waitFor(`${n} in line`, async () => (gate.waiting === n ? true : undefined)),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The API's predict gate (API_MAX_CONCURRENT_PREDICTS) on a real HTTP server: a predict past the
 * limit waits, unread, until a slot frees; past its wait a 503 with Retry-After; a client that
 * leaves the line frees its place; other routes never wait.
 */
describe('predict gate', () => {
  // Waits far longer than any test: only an answer or a client leaving frees a place here.
  let s: Awaited<ReturnType<typeof gatedServer>>;
  before(async () => {
    s = await gatedServer(predictGate({ limit: 1, waitMs: 600_000, retryAfterSeconds: 3 }));
  });
  after(() => s.close());

  it('lets one predict through at a time, the next when the first is answered; job reads pass', async () => {
    const first = s.post(PREDICT);
    await waitFor('the first predict to pass', async () => (s.reached === 1 ? true : undefined));
    const second = s.post('/v1/models/digits@prod/predict');
    await s.inLine(1);
    // The second waits at the gate while the first is held; a job read does not.
    assert.equal((await fetch(`${s.base}/v1/jobs/abc`)).status, 200);
    assert.equal(s.reached, 1, 'the second predict passed the gate while the first ran');
    await s.answerOne();
    assert.equal((await first).status, 200);
    await s.answerOne();
    assert.equal((await second).status, 200);
    assert.equal(s.reached, 2);
  });

  it('a client that leaves the line frees its place: the next one gets the slot', async () => {
    const first = s.post(PREDICT);
    await waitFor('the first predict to pass', async () => (s.reached === 3 ? true : undefined));
    // A raw request that goes away while it waits.
    const gone = request(s.base + PREDICT, { method: 'POST', headers: { 'content-length': '2' } });
    gone.on('error', () => undefined);
    gone.write('{');
    await s.inLine(1);
    const third = s.post(PREDICT);
    await s.inLine(2);
    gone.destroy();
    await s.inLine(1);
    await s.answerOne();
    assert.equal((await first).status, 200);
    await s.answerOne();
    assert.equal((await third).status, 200);
    assert.equal(s.reached, 4, 'the request that left never reached its handler');
  });

  it('answers 503 with Retry-After to a predict that waited past its bound, naming the setting', async () => {
    const short = await gatedServer(predictGate({ limit: 1, waitMs: 300, retryAfterSeconds: 3 }));
    try {
      const first = short.post(PREDICT);
      await waitFor('the first predict to pass', async () => (short.reached === 1 ? true : undefined));
      const late = await short.post('/v1/models/digits/versions/1/explain');
      assert.equal(late.status, 503);
      assert.equal(late.headers.get('retry-after'), '3');
      const body = (await late.json()) as { issues: { field: string; reason: string }[] };
      assert.match(body.issues[0]!.reason, /API_MAX_CONCURRENT_PREDICTS 1/);
      assert.equal(short.reached, 1);
      await short.answerOne();
      assert.equal((await first).status, 200);
    } finally {
      await short.close();
    }
  });
});
