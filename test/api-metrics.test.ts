import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../tools/free-port';
import { waitForHttp } from '../tools/processes';
import { promtoolCheck, sample } from './support/prometheus';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';
import { irisTrain } from './support/iris-train';

const IRIS_TRAIN = (epochs: number, batchSize = 16) => irisTrain({ epochs, batchSize, validationSplit: 0 });

describe('metrics of the API and of a worker after a trained and a cancelled job', () => {
  let system: TestSystem;
  let workerMetricsUrl: string;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
    const port = await freePort();
    system.addWorker({ WORKER_METRICS_PORT: String(port) });
    workerMetricsUrl = `http://127.0.0.1:${port}/metrics`;
    await waitForHttp(workerMetricsUrl);
  });
  after(() => system.stop());

  it('trains one job and cancels another while it runs', async () => {
    const trained = await system.waitForJob((await system.request('POST', '/v1/jobs/train', IRIS_TRAIN(5))).body.id);
    assert.equal(trained.state, 'completed', JSON.stringify(trained));
    // 150k steps: far longer than the cancellation takes.
    const { body } = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN(1000, 1));
    assert.ok(body.id, JSON.stringify(body));
    await waitFor('training to start', async () => {
      const job = (await system.request('GET', `/v1/jobs/${body.id}`)).body;
      return job.state === 'active' && job.progress?.stage === 'training' ? job : undefined;
    });
    await system.request('DELETE', `/v1/jobs/${body.id}`);
    assert.equal((await system.waitForJob(body.id)).state, 'cancelled');
  });

  it('the API counts the cancelled job as cancelled, keeps a throughput sample, and passes promtool', async () => {
    // The counters follow the queue event stream: wait until the cancellation arrived.
    const text = await waitFor('the API to count the cancelled job', async () => {
      const t = String((await system.request('GET', '/metrics')).body);
      return sample(t, 'tq_jobs_finished_total{queue="train",outcome="cancelled"}') === 1 ? t : undefined;
    });
    assert.equal(sample(text, 'tq_jobs_finished_total{queue="train",outcome="completed"}'), 1);
    assert.equal(
      sample(text, 'tq_jobs_finished_total{queue="train",outcome="failed"}'),
      undefined,
      'a cancelled job is no failure',
    );
    assert.ok((sample(text, 'tq_training_samples_per_second') ?? 0) > 0, 'tq_training_samples_per_second has a sample');
    assert.equal(promtoolCheck(text), '');
  });

  it('the worker serves its own metrics: its jobs, its throughput, its process; and they pass promtool', async () => {
    const text = await (await fetch(workerMetricsUrl)).text();
    assert.equal(sample(text, 'tq_worker_jobs_finished_total{queue="train",outcome="completed"}'), 1);
    assert.equal(sample(text, 'tq_worker_jobs_finished_total{queue="train",outcome="cancelled"}'), 1);
    assert.equal(sample(text, 'tq_worker_job_duration_seconds_count{queue="train",outcome="completed"}'), 1);
    assert.ok(
      (sample(text, 'tq_worker_training_samples_per_second') ?? 0) > 0,
      'tq_worker_training_samples_per_second has a sample',
    );
    assert.ok((sample(text, 'tq_worker_process_cpu_seconds_total') ?? 0) > 0, 'process metrics');
    assert.equal(promtoolCheck(text), '');
  });
});

describe('metrics of the API for jobs cancelled while waiting (no workers)', () => {
  let system: TestSystem;
  before(async () => {
    system = await TestSystem.start({ workers: 0 });
  });
  after(() => system.stop());

  it('counts them as cancelled: removing a waiting job sends no failed event', async () => {
    for (let i = 0; i < 2; i++) {
      const { body } = await system.request('POST', '/v1/jobs/train', IRIS_TRAIN(1));
      assert.equal((await system.request('DELETE', `/v1/jobs/${body.id}`)).body.state, 'cancelled');
    }
    const text = String((await system.request('GET', '/metrics')).body);
    assert.equal(sample(text, 'tq_jobs_finished_total{queue="train",outcome="cancelled"}'), 2, text);
    assert.equal(promtoolCheck(text), '');
  });
});
