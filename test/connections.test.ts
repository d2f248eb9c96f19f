import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { TestSystem } from './support/system';
import { registerTestModel } from './support/test-models';

const CONNECTIONS = 10_000;
const F = 4;

/** One raw HTTP/1.1 request on its own connection; the answer's status, or the socket's error code. */
function rawRequest(port: number, request: string): Promise<number | string> {
  return new Promise((resolve) => {
    let head = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      head += chunk;
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
      if (status) {
        resolve(Number(status[1]));
        socket.destroy();
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.on('close', () => resolve('closed without an answer'));
  });
}

/** The soft and hard limits on open files of this process (and of the API it starts). */
async function openFileLimits(): Promise<{ soft: number; hard: number }> {
  const limits = await readFile('/proc/self/limits', 'utf8');
  const [, soft, hard] = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits) ?? [];
  const num = (v: string | undefined) => (v === 'unlimited' ? Infinity : Number(v));
  return { soft: num(soft), hard: num(hard) };
}

/** Peak resident set of a process (VmHWM), MiB. */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]) / 1024;
}

/**
 * 10,000 clients at once, each on its own connection with a predict (issue 10, bad input): the API
 * bounds what it holds (MAX_INFLIGHT_REQUESTS, set low here so the bound is sure to be met), answers
 * every one of them 200, 429 or 503, never drops a connection or crashes, and serves normally after.
 * The process's soft limit on open files must allow 10,000 sockets (tools/run-tests raises it to
 * the hard limit).
 */
describe(`${CONNECTIONS.toLocaleString('en-US')} concurrent connections`, () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({
      workers: 0,
      env: { MAX_INFLIGHT_REQUESTS: '64', MAX_INFLIGHT_JSON_BYTES: '100000' },
    });
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 3, activation: 'softmax', inputShape: [F] }));
    await registerTestModel(system, 'crowd', model, F);
    model.dispose();
  });
  after(() => system?.stop());

  it('answers each 200, 429 or 503 with the in-flight bound met, keeps running, and serves after', async () => {
    const { soft, hard } = await openFileLimits();
    assert.ok(
      soft >= CONNECTIONS + 1000,
      `${CONNECTIONS} sockets need a soft limit on open files of at least ${CONNECTIONS + 1000} ` +
        `(ulimit -n; it is ${soft}, the hard limit ${hard}): run the tests with npm test, which raises it`,
    );
    const port = Number(new URL(system.url).port);
    const body = JSON.stringify({ instances: [[0.5, -1, 2, 0.25]] });
    const request =
      `POST /v1/models/crowd/versions/1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${system.adminKey!}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const idleMiB = await peakRssMiB(system.apiPid!);
    const answers = await Promise.all(Array.from({ length: CONNECTIONS }, () => rawRequest(port, request)));
    const counts: Record<string, number> = {};
    for (const a of answers) counts[String(a)] = (counts[String(a)] ?? 0) + 1;
    const peakMiB = await peakRssMiB(system.apiPid!);
    console.log(
      `# ${CONNECTIONS} connections: ${JSON.stringify(counts)}; API peak RSS ${Math.round(peakMiB)} MiB (${Math.round(idleMiB)} before)`,
    );
    assert.deepEqual(
      Object.keys(counts).filter((k) => !['200', '429', '503'].includes(k)),
      [],
      `every connection answered 200, 429 or 503: ${JSON.stringify(counts)}`,
    );
    assert.ok((counts['200'] ?? 0) > 0, JSON.stringify(counts));
    assert.ok((counts['503'] ?? 0) > 0, `the in-flight bound was met: ${JSON.stringify(counts)}`);
    assert.doesNotThrow(() => process.kill(system.apiPid!, 0), 'the API is still running');

    // After the crowd: health, and a predict once the tenant's rate bucket has a token again.
    assert.equal((await system.fetch('/health')).status, 200);
    const predict = () =>
      system.fetch('/v1/models/crowd/versions/1/predict', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    let res = await predict();
    while (res.status === 429) {
      await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      res = await predict();
    }
    const answer: any = await res.json();
    assert.equal(res.status, 200, JSON.stringify(answer));
    assert.equal(answer.predictions.length, 1);
  });

  it('bounds the JSON bytes in flight: a body that would pass MAX_INFLIGHT_JSON_BYTES gets a 503', async () => {
    const port = Number(new URL(system.url).port);
    const headers = (length: number) =>
      `POST /v1/models/crowd/versions/1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
      `Authorization: Bearer ${system.adminKey!}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    // A slow client: 90,000 bytes announced, a few sent, the rest held back.
    const slow = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    slow.write(headers(90_000) + '{"instances":');
    // An answer on another connection, after the slow one's headers were read: its body is in flight.
    assert.equal((await system.fetch('/v1/models/crowd')).status, 200);
    assert.equal(await rawRequest(port, headers(20_000) + ' '.repeat(20_000)), 503);
    slow.destroy();
    // Once the slow client is gone, the same request is read (a 400: 20,000 spaces are no JSON body).
    let status = await rawRequest(port, headers(20_000) + ' '.repeat(20_000));
    while (status === 503) status = await rawRequest(port, headers(20_000) + ' '.repeat(20_000));
    assert.equal(status, 400);
  });
});
