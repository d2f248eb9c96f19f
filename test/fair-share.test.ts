import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestSystem } from './support/system';
import { tenantClient } from './support/tenant-keys';

const TRAIN = {
  model: {
    name: 'fair',
    layers: [
      { type: 'dense', units: 4, activation: 'relu', inputShape: [4] },
      { type: 'dense', units: 3, activation: 'softmax' },
    ],
  },
  dataset: { builtin: 'iris' },
  fit: { epochs: 1, validationSplit: 0 },
};
const BIG_JOBS = 6;

/**
 * Tenant "big" queues BIG_JOBS jobs (submitted concurrently) while no worker runs, then "small" submits one; one worker
 * with concurrency 1 starts: the start order (the views' startedAt) says who ran when.
 */
async function startOrder(fairShare: 'on' | 'off'): Promise<string[]> {
  const system = await TestSystem.start({ workers: 0, env: { FAIR_SHARE: fairShare } });
  try {
    const big = await tenantClient(system, 'big');
    const small = await tenantClient(system, 'small');
    const ids: Record<string, string> = {};
    // All at once: their rounds are given before their jobs land in the queue, which must not
    // hand several of them round 1 (the queue looks empty meanwhile).
    const bigIds = await Promise.all(
      Array.from(
        { length: BIG_JOBS },
        async () => (await big.request('POST', '/v1/jobs/train', TRAIN)).body.id as string,
      ),
    );
    bigIds.forEach((id, i) => (ids[id] = `big-${i}`));
    ids[(await small.request('POST', '/v1/jobs/train', TRAIN)).body.id] = 'small';
    system.addWorker({ WORKER_CONCURRENCY: '1' });
    const views = [];
    for (const id of Object.keys(ids)) views.push(await system.waitForJob(id));
    for (const v of views) assert.equal(v.state, 'completed', JSON.stringify(v));
    return views.sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt)).map((v) => ids[v.id]!);
  } finally {
    await system.stop();
  }
}

describe('fair share between tenants', () => {
  it("starts the small tenant's job among the first two while the big one has many queued", async () => {
    const order = await startOrder('on');
    assert.ok(order.indexOf('small') < 2, `start order: ${order.join(', ')}`);
  });

  it('runs it last with FAIR_SHARE=off (first in, first out): the order the test above refuses', async () => {
    const order = await startOrder('off');
    assert.equal(order.at(-1), 'small', `start order: ${order.join(', ')}`);
  });
});
