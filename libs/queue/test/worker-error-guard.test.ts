import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Queue, QueueEvents, Worker } from 'bullmq';
import Redis from 'ioredis';
import { WorkerErrorGuard } from '../src/worker-error-guard';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * BullMQ 6.7 retries its fetch at once after an error that is not a lost connection (the chaos
 * run's CROSSSLOT). Reproduced here on real Redis: the queue's active list made a string, so every
 * moveToActive fails with WRONGTYPE (without the guard: ~5,800 errors in 2 s on this machine).
 */
describe('WorkerErrorGuard on a worker whose fetch keeps failing', () => {
  const prefix = `tqtest-guard-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(url);
  const connection = { url, maxRetriesPerRequest: null };
  let queue: Queue;
  let events: QueueEvents;
  before(async () => {
    queue = new Queue('q', { connection, prefix });
    events = new QueueEvents('q', { connection, prefix });
    await events.waitUntilReady();
  });
  after(async () => {
    await queue.close();
    await events.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
  });

  it('holds the fetch loop back with growing delays, logs the error once, and fetches again once it clears', async () => {
    const job = await queue.add('j', {});
    await redis.set(`${prefix}:q:active`, 'not a list');
    const warnings: string[] = [];
    const worker = new Worker('q', async () => 'done', { connection, prefix, autorun: false });
    let errors = 0;
    worker.on('error', () => (errors += 1));
    const guard = new WorkerErrorGuard(worker, { warn: (m) => warnings.push(m) }, 2000).attach();
    void worker.run();
    try {
      await new Promise((r) => setTimeout(r, 3000));
      console.log(`# ${errors} fetch errors in 3 s with the guard; ${warnings.length} log line(s)`);
      // Delays 50-100, 100-200, 200-400, 400-800, 800-1600 ms...: a handful, not thousands.
      assert.ok(errors >= 2 && errors <= 20, `${errors} errors`);
      assert.ok(guard.streak >= 2);
      // Once each: the fetch's script error, and the stall check's (another script on the same key).
      assert.ok(warnings.length >= 1 && warnings.length <= 2, JSON.stringify(warnings));
      assert.equal(new Set(warnings).size, warnings.length, JSON.stringify(warnings));
      for (const w of warnings) assert.match(w, /^queue q: WRONGTYPE/);
      // The key fixed, the paused loop resumes (within one capped delay) and takes the job.
      await redis.del(`${prefix}:q:active`);
      assert.equal(await job.waitUntilFinished(events, 30_000), 'done');
    } finally {
      await worker.close(true);
    }
  });
});
