import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { KEEP_ALIVE_TIMEOUT_MS } from '@tq/runtime';
import { TestSystem } from './support/system';
import { registerTestModel } from './support/test-models';

/** Node's own keep-alive timeout, which a connection must outlive here. */
const NODE_DEFAULT_MS = 5_000;
/** Kubernetes' default terminationGracePeriodSeconds: a process that takes longer is killed. */
const GRACE_MS = 30_000;
const F = 3;

/** The status of the next whole response on `socket` (its head and Content-Length bytes of body). */
function nextAnswer(socket: Socket, host: string): Promise<number> {
  let text = '';
  const status = new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const head = /^HTTP\/1\.1 (\d{3}) [^]*?\r\n\r\n/.exec(text);
      const length = /\r\ncontent-length: (\d+)\r\n/i.exec(text);
      if (head && length && text.length >= head[0].length + Number(length[1])) {
        socket.off('data', onData);
        resolve(Number(head[1]));
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`${host}: the connection closed (${JSON.stringify(text)})`)));
  });
  return status;
}

/** Sends GET /health on `socket` and resolves with the answer's status. */
function health(socket: Socket, host: string): Promise<number> {
  const status = nextAnswer(socket, host);
  socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
  return status;
}

/** Resolves once nothing listens on `port` any more (a new connection is refused). */
async function listenerClosed(port: number): Promise<void> {
  for (;;) {
    const probe = connect(port, '127.0.0.1');
    const refused = await new Promise<boolean>((resolve) => {
      probe.once('connect', () => resolve(false)).once('error', () => resolve(true));
    });
    probe.destroy(); // a connection left open would hold the server's close()
    if (refused) return;
    await sleep(50);
  }
}

/** Resolves with true once `child` exits, false if it has not after `ms`. */
function exitsWithin(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return Promise.race([once(child, 'exit').then(() => true), sleep(ms).then(() => false)]);
}

/**
 * An idle keep-alive connection outlives Node's default 5 s on the API and a serve replica
 * (KEEP_ALIVE_TIMEOUT_MS), so a load balancer whose idle timeout is longer than 5 s never sends a
 * request on a connection the app is closing; and that longer life does not hold a stopping
 * process: a connection ends with its last answer (applyKeepAlive).
 */
describe('keep-alive connections', () => {
  let system: TestSystem;
  let replicaUrl: string;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    replicaUrl = (await system.addServeReplica()).url;
    const model = tf.sequential();
    model.add(tf.layers.dense({ units: 2, activation: 'softmax', inputShape: [F] }));
    await registerTestModel(system, 'kept', model, F);
    model.dispose();
  });
  after(() => system?.stop());

  it(`stay open past Node's default ${NODE_DEFAULT_MS} ms and answer the next request`, async () => {
    assert.ok(KEEP_ALIVE_TIMEOUT_MS > NODE_DEFAULT_MS + 2_000);
    await Promise.all(
      [system.url, replicaUrl].map(async (url) => {
        const { hostname, port } = new URL(url);
        const socket = connect(Number(port), hostname);
        await once(socket, 'connect');
        try {
          assert.equal(await health(socket, url), 200);
          let closed = false;
          socket.once('close', () => (closed = true));
          await sleep(NODE_DEFAULT_MS + 1_500);
          assert.equal(closed, false, `${url} closed an idle connection within ${NODE_DEFAULT_MS + 1_500} ms`);
          assert.equal(await health(socket, url), 200);
        } finally {
          socket.destroy();
        }
      }),
    );
  });

  it('on SIGTERM a request in flight is answered, and the process exits without waiting out the keep-alive', async () => {
    const body = JSON.stringify({ instances: [[0.1, 0.2, 0.3]] });
    const api = await system.addApi();
    const replica = await system.addServeReplica();
    const targets: [string, ChildProcess][] = [
      [api.url, api.process],
      [replica.url, replica.process],
    ];
    await Promise.all(
      targets.map(async ([url, child]) => {
        const { hostname, port } = new URL(url);
        const socket = connect(Number(port), hostname);
        await once(socket, 'connect');
        let early = '';
        const onEarly = (chunk: Buffer) => (early += chunk.toString('latin1'));
        socket.on('data', onEarly);
        // Half the body: the request is in flight until the rest comes.
        socket.write(
          `POST /v1/models/kept/versions/1/predict HTTP/1.1\r\nHost: ${url}\r\nConnection: keep-alive\r\n` +
            `Authorization: Bearer ${system.adminKey!}\r\nContent-Type: application/json\r\n` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, 10)}`,
        );
        child.kill('SIGTERM');
        await listenerClosed(Number(port));
        socket.off('data', onEarly);
        assert.equal(early, '', `${url} answered before the body was whole`);
        const answered = nextAnswer(socket, url);
        socket.write(body.slice(10));
        assert.equal(await answered, 200, url);
        assert.ok(await exitsWithin(child, GRACE_MS), `${url} still running ${GRACE_MS} ms after its last answer`);
        socket.destroy();
      }),
    );
  });
});
