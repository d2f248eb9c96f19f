import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { ALL_QUEUES, QueueName } from '@tq/contracts';
import { promtoolCheck, sample } from './support/prometheus';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

/**
 * tq_queue_depth, the figure KEDA scales workers on (deploy/k8s): with no worker running, jobs put
 * straight into the queues stay where they are put, so the expected figures are exact.
 */
describe('tq_queue_depth on the API /metrics', () => {
  let system: TestSystem;
  let train: Queue;
  let shards: Queue;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    const connection = { url: system.redisUrl };
    train = new Queue(QueueName.Train, { connection, prefix: system.prefix });
    shards = new Queue(QueueName.TrainShard, { connection, prefix: system.prefix });
  });
  after(async () => {
    await train?.close();
    await shards?.close();
    await system?.stop();
  });

  it('is 0 for every queue, the internal ones included, when nothing is queued', async () => {
    const text = String((await system.request('GET', '/metrics')).body);
    for (const queue of ALL_QUEUES) assert.equal(sample(text, `tq_queue_depth{queue="${queue}"}`), 0, queue);
  });

  it('counts waiting, prioritized and due delayed jobs, not the delayed ones still in the future', async () => {
    await train.add('train', {});
    await train.add('train', {});
    await train.add('train', {}, { priority: 1 });
    await train.add('train', {}, { delay: 3_600_000 });
    const soon = await train.add('train', {}, { delay: 300 });
    await shards.add('train-shard', {});
    // No worker promotes it: once its time has passed it stays in the delayed set, due.
    await waitFor('the short delay to pass', async () => (Date.now() > soon.timestamp + 300 ? true : undefined));
    assert.equal(await train.getDelayedCount(), 2, 'both delayed jobs are still in the delayed set');

    const text = String((await system.request('GET', '/metrics')).body);
    assert.equal(sample(text, 'tq_queue_depth{queue="train"}'), 4, 'two waiting + one prioritized + one due');
    assert.equal(sample(text, 'tq_queue_depth{queue="train-shard"}'), 1);
    assert.equal(sample(text, 'tq_queue_depth{queue="infer"}'), 0);
    assert.equal(sample(text, 'tq_jobs{queue="train",state="delayed"}'), 2, 'the future one is a job, not demand');
    assert.equal(promtoolCheck(text), '');
  });
});
