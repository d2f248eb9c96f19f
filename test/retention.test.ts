import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ArtifactStore } from '@tq/storage';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

/** The worker app's retention service, end to end: API + worker processes, tight bounds. */
describe('retention in the running system', () => {
  let system: TestSystem;
  let store: ArtifactStore;

  before(async () => {
    system = await TestSystem.start({ workerEnv: { JOB_HISTORY_COUNT: '2', RETENTION_SWEEP_MS: '200' } });
    store = new ArtifactStore(system.artifactDir).forTenant('default');
  });
  after(() => system?.stop());

  it('keeps the newest two infer jobs of the queue; older ones go with their outputs', async () => {
    const train = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'retention-iris',
        layers: [
          { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
          { type: 'dense', units: 3, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'iris' },
      fit: { epochs: 1 },
    });
    assert.equal(train.status, 202, JSON.stringify(train.body));
    const trained = await system.waitForJob(train.body.id);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));

    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await system.request('POST', '/v1/jobs/infer', {
        model: trained.result.model,
        input: { instances: [[5.1, 3.5, 1.4, 0.2]] },
      });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal((await system.waitForJob(res.body.id)).state, 'completed');
      ids.push(res.body.id);
    }
    const [oldest, older, newer, newest] = ids as [string, string, string, string];
    // A sweep removes a job, then its files: wait for both.
    await waitFor('the two oldest infer jobs to be retired with their outputs', async () => {
      const gone = await Promise.all(
        [oldest, older].map(
          async (id) =>
            (await system.request('GET', `/v1/jobs/${id}`)).status !== 200 &&
            (await store.blobs.head(store.outputKey(id))) === undefined,
        ),
      );
      return gone.every(Boolean) ? true : undefined;
    });
    for (const id of [oldest, older]) {
      assert.ok([404, 410].includes((await system.request('GET', `/v1/jobs/${id}`)).status), id);
      assert.equal(await store.blobs.head(store.outputKey(id)), undefined, `${id}: output removed with its job`);
    }
    for (const id of [newer, newest]) {
      assert.equal((await system.request('GET', `/v1/jobs/${id}`)).body.state, 'completed', id);
      assert.equal((await system.request('GET', `/v1/jobs/${id}/output`)).status, 200, id);
    }
    // Its own queue's bound: the train job stays.
    assert.equal((await system.request('GET', `/v1/jobs/${train.body.id}`)).body.state, 'completed');
  });
});
