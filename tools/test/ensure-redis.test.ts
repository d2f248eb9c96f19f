import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Redis from 'ioredis';
import { ensureRedis } from '../ensure-redis';
import { freePort } from '../free-port';

/** The quickstart's promise: with nothing on the usual port, a private redis-server is started and stopped. */
describe('ensureRedis', () => {
  it('starts a private redis-server on loopback when the local port does not answer, and stops it', async () => {
    const saved = process.env.REDIS_URL;
    delete process.env.REDIS_URL;
    const dir = await mkdtemp(join(tmpdir(), 'tq-redis-'));
    try {
      const handle = await ensureRedis(dir, `redis://127.0.0.1:${await freePort()}`);
      assert.equal(handle.source, 'private');
      assert.match(handle.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      const client = new Redis(handle.url);
      assert.equal(await client.ping(), 'PONG');
      client.disconnect();
      await handle.stop();
      const after = new Redis(handle.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      after.on('error', () => {});
      await assert.rejects(after.connect());
      after.disconnect();
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
