import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { KEEP_ALIVE_TIMEOUT_MS } from '@tq/runtime';
import { TestSystem } from './support/system';

/** Node's own keep-alive timeout, which a connection must outlive here. */
const NODE_DEFAULT_MS = 5_000;

/** Sends GET /health on `socket` and resolves with the answer's status (one response read whole). */
async function health(socket: Socket, host: string): Promise<number> {
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
  socket.write(`GET /health HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`);
  return status;
}

/**
 * An idle keep-alive connection outlives Node's default 5 s on the API and a serve replica
 * (KEEP_ALIVE_TIMEOUT_MS), so a load balancer whose idle timeout is longer than 5 s never sends a
 * request on a connection the app is closing.
 */
describe('keep-alive connections', () => {
  let system: TestSystem;
  let replicaUrl: string;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    replicaUrl = (await system.addServeReplica()).url;
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
});
