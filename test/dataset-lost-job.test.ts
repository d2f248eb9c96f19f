import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { QueueName } from '@tq/contracts';
import { ArtifactStore } from '@tq/storage';
import { TestSystem } from './support/system';

/**
 * A dataset whose profiling job is gone (removed from Redis, never run: no worker serves the
 * datasets queue here) is marked failed when seen, instead of answering "profiling" for ever.
 */
describe('a profiling dataset whose job is lost', () => {
  let system: TestSystem;
  let queue: Queue;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    queue = new Queue(QueueName.Datasets, { connection: { url: system.redisUrl }, prefix: system.prefix });
  });
  after(async () => {
    await queue.close();
    await system.stop();
  });

  it('is failed (500 stored, naming id) once its job cannot be found, and not while it is young', async () => {
    const form = new FormData();
    form.append('file', new Blob(['a,y\n1,p\n2,q\n']), 't.csv');
    form.append('labelColumn', 'y');
    const res = await system.fetch(`/v1/datasets?wait=false`, { method: 'POST', body: form });
    const uploaded = (await res.json()) as { id: string; jobId: string; status: string };
    assert.equal(res.status, 202, JSON.stringify(uploaded));
    assert.equal(await queue.remove(uploaded.jobId), 1);

    // Just stored: its job may still be on its way to Redis, so it stays profiling.
    assert.equal((await system.request('GET', `/v1/datasets/${uploaded.id}`)).body.status, 'profiling');

    // An hour old and still without a job: lost.
    const store = new ArtifactStore(system.artifactDir).forTenant('default');
    const infoKey = store.datasetKey(uploaded.id, 'info.json');
    const info = JSON.parse((await store.blobs.get(infoKey)).toString('utf8')) as { createdAt: string };
    await store.blobs.put(
      infoKey,
      JSON.stringify({ ...info, createdAt: new Date(Date.now() - 3_600_000).toISOString() }),
    );
    const seen = await system.request('GET', `/v1/datasets/${uploaded.id}`);
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assert.deepEqual([seen.body.status, seen.body.error?.field, seen.body.error?.status], ['failed', 'id', 500]);
    const train = await system.request('POST', '/v1/jobs/train', {
      model: { name: 'm', layers: [{ type: 'dense', units: 2, activation: 'softmax' }] },
      dataset: { id: uploaded.id },
    });
    assert.equal(train.status, 400, JSON.stringify(train.body));
    assert.equal(train.body.issues?.[0]?.field, 'dataset.id');
  });
});
