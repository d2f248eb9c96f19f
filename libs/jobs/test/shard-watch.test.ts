import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import Redis from 'ioredis';
import {
  QueueName,
  localJobMeta,
  type InferShardJobData,
  type InferShardResult,
  type JobEnvelope,
} from '@tq/contracts';
import { runShardsOnQueue, type ParentHooks } from '@tq/jobs';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

const shardOf = (parentJobId: string, shard: number): InferShardJobData => ({
  parentJobId,
  shard,
  shards: 2,
  model: { name: 'm', version: 1 },
  dataset: randomUUID(),
  firstRow: 1 + shard * 10,
  rows: 10,
  batchSize: 10,
  maxErrors: 0,
});

/**
 * runShardsOnQueue against a real queue and worker. A shard that completes between the watch's
 * read of its hash and its read of its state used to count as done without a return value: the
 * parent's attempt failed on it (CI: an infer job that had already lost one attempt to a killed
 * worker gave up). Here the watch's getJob is held until the shard completes, every time.
 */
describe('runShardsOnQueue', () => {
  const prefix = `tqtest-shards-${randomUUID().slice(0, 8)}`;
  let connection: Redis;
  /** BullMQ leaves connections it was given open: each one is closed here. */
  const connections: Redis[] = [];
  const connect = (): Redis => {
    const c = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  let queue: Queue;
  let events: QueueEvents;
  let worker: Worker;

  before(async () => {
    connection = connect();
    queue = new Queue(QueueName.InferShard, { connection, prefix });
    events = new QueueEvents(QueueName.InferShard, { connection: connect(), prefix });
    await events.waitUntilReady();
    worker = new Worker<JobEnvelope<InferShardJobData>, InferShardResult>(
      QueueName.InferShard,
      async (job: Job<JobEnvelope<InferShardJobData>>) => ({
        rows: job.data.request.rows,
        errors: 0,
        firstErrors: [],
        engine: 'onnxruntime',
        reused: false,
      }),
      { connection: connect(), prefix, autorun: false },
    );
  });
  after(async () => {
    await worker?.close();
    await events?.close();
    await queue?.obliterate({ force: true });
    await queue?.close();
    for (const c of connections) c.disconnect();
  });

  it('counts a shard done only with its result, even when it completes while being looked at', async () => {
    const parent = `infer-${randomUUID()}`;
    const shards = [shardOf(parent, 0), shardOf(parent, 1)];
    // Each of the watch's hash reads waits for a shard to complete after it (the worker runs then).
    const racing = new Proxy(queue, {
      get(target, prop, receiver) {
        if (prop !== 'getJob') return Reflect.get(target, prop, receiver) as unknown;
        return async (id: string) => {
          const before = await target.getJob(id);
          if (before && (await before.getState()) !== 'completed' && !worker.isRunning()) {
            const done = new Promise<void>((resolve) => events.once('completed', () => resolve()));
            void worker.run();
            await done;
          }
          return before;
        };
      },
    });
    const hooks: ParentHooks = {
      jobId: parent,
      meta: localJobMeta(),
      signal: new AbortController().signal,
      log: () => undefined,
    };
    const seen: number[] = [];
    const done = await runShardsOnQueue(
      shards,
      { queue: racing, cancel: async () => undefined, pollMs: 20 },
      hooks,
      async (status) => {
        seen.push(status.filter((s) => s.done).reduce((sum, s) => sum + s.rows, 0));
      },
    );
    assert.deepEqual(
      done.results.map((r) => r.rows),
      [10, 10],
    );
    // Every report of done shards counts their rows (a done shard without a result counted 0).
    assert.equal(seen.at(-1), 20, JSON.stringify(seen));
  });
});
