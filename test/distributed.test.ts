import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { aggregateResultSchema, QueueName } from '@tq/contracts';
import { aggregatorJobId, makePlan, runIdOf, shardJobId } from '@tq/paramserver';
import { TestSystem } from './support/system';
import { waitFor } from './support/wait-for';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/**
 * Only a guard against a hung run: every wait below ends on a state (a step reached, a job
 * finished) and fails at once when the job ends early. A loaded 2-core machine takes minutes.
 */
const HANG_GUARD_MS = 20 * 60_000;

/**
 * The deployment the parameter server is made for, end to end: the API, two worker processes
 * serving the train queue (one runs the coordinator, which only waits), two serving aggregate and
 * four serving train-shard: one more per role than the run needs, as a fleet would have. All are
 * apps/worker with WORKER_QUEUES; job locks short enough that a dead process is noticed in seconds,
 * long enough that a live one starved of CPU (nine processes starting on two loaded cores) keeps
 * its job. Should one lose it anyway, BullMQ hands the job to another process while the first goes
 * on: the older attempt sees itself superseded and stops (RunChannel.claim).
 */
describe('POST /v1/jobs/train with "distributed" (real API and worker processes)', () => {
  let system: TestSystem;
  let aggregateQueue: Queue;
  let shardQueue: Queue;
  /** digits-sparse v1, trained by the compress test, compressed again by the cancel test. */
  let source: { name: string; version: number };
  before(async () => {
    system = await TestSystem.start({
      workers: 0,
      workerEnv: { LOCK_DURATION_MS: '10000', STALLED_INTERVAL_MS: '2000' },
    });
    for (let i = 0; i < 2; i++) system.addWorker({ WORKER_QUEUES: 'train' });
    for (let i = 0; i < 2; i++) system.addWorker({ WORKER_QUEUES: 'aggregate' });
    for (let i = 0; i < 4; i++) system.addWorker({ WORKER_QUEUES: 'train-shard' });
    system.addWorker({ WORKER_QUEUES: 'compress' });
    const connection = { url: REDIS_URL, maxRetriesPerRequest: null };
    aggregateQueue = new Queue(QueueName.Aggregate, { connection, prefix: system.prefix });
    shardQueue = new Queue(QueueName.TrainShard, { connection, prefix: system.prefix });
  });
  after(async () => {
    await aggregateQueue.close();
    await shardQueue.close();
    await system.stop();
  });

  it('3 workers, sync: survives SIGKILLed shard, aggregator and coordinator processes, registers one version', async () => {
    const { status, body } = await system.request('POST', '/v1/jobs/train', {
      model: {
        name: 'digits-dp',
        layers: [
          { type: 'dense', units: 64, activation: 'relu', inputShape: [784] },
          { type: 'dense', units: 10, activation: 'softmax' },
        ],
      },
      dataset: { builtin: 'mnist' },
      fit: { epochs: 4, batchSize: 32, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 1 },
      distributed: { workers: 3, mode: 'sync', stepTimeoutMs: 1000, quorum: 2, checkpointEvery: 10 },
    });
    assert.equal(status, 202, JSON.stringify(body));
    const runId = runIdOf(body.id);
    const progressAt = (step: number) =>
      waitFor(
        `global step ${step}`,
        async () => {
          const job = (await system.request('GET', `/v1/jobs/${body.id}`)).body;
          if (['completed', 'failed', 'cancelled'].includes(job.state))
            throw new Error(`job is ${job.state} before step ${step}: ${JSON.stringify(job)}`);
          return job.progress?.stage === 'training' && job.progress.step >= step ? job.progress : undefined;
        },
        HANG_GUARD_MS,
      );
    const byWorker = (worker: string | undefined) => {
      const proc = system.workers.find((w) => worker === `${hostname()}:${w.pid}`);
      assert.ok(proc, `no test worker is ${worker}`);
      return proc;
    };

    // Progress through the API: global step, loss, samples/s, each worker's share, the slowest.
    const early = await progressAt(30);
    assert.deepEqual(Object.keys(early.workers).sort(), ['shard-0', 'shard-1', 'shard-2']);
    assert.match(early.slowestWorker, /^shard-[012]$/);
    assert.ok(early.samplesPerSec > 0 && early.loss > 0, JSON.stringify(early));

    const shardVictim = (await shardQueue.getJob(shardJobId(runId, 1)))?.processedBy;
    byWorker(shardVictim).kill('SIGKILL');
    await progressAt(120);
    const aggVictim = (await aggregateQueue.getJob(aggregatorJobId(runId)))?.processedBy;
    byWorker(aggVictim).kill('SIGKILL');
    // The coordinator's process dies too: the train job is picked up by the other train worker,
    // whose coordinator re-attaches to the same child jobs (ids derived from the train job's).
    await progressAt(200);
    const coordVictim = (await system.request('GET', `/v1/jobs/${body.id}`)).body.worker as string;
    byWorker(coordVictim).kill('SIGKILL');

    const job = await system.waitForJob(body.id, undefined, HANG_GUARD_MS);
    assert.equal(job.state, 'completed', JSON.stringify(job));
    assert.notEqual(job.worker, coordVictim);
    assert.deepEqual(job.result.distributed, {
      workers: 3,
      mode: 'sync',
      steps: 4 * 94,
      droppedStale: job.result.distributed.droppedStale,
    });
    assert.equal(await aggregateQueue.count(), 0, 'no second aggregator was enqueued');
    assert.equal((await aggregateQueue.getJobCounts('completed')).completed, 1);
    // A shard job that was handed to another process late (a retry) may still be finishing when
    // the train job completes: it sees the run ended and completes without training.
    await waitFor(
      'every shard job completed',
      async () => {
        const states = await Promise.all(
          [0, 1, 2].map(async (i) => (await shardQueue.getJob(shardJobId(runId, i)))?.getState()),
        );
        if (states.some((s) => s === undefined || s === 'failed'))
          throw new Error(`shard jobs: ${JSON.stringify(states)}`);
        return states.every((s) => s === 'completed') ? states : undefined;
      },
      HANG_GUARD_MS,
    );
    assert.ok(job.result.metrics.valAccuracy >= 0.9, JSON.stringify(job.result.metrics));
    const model = (await system.request('GET', '/v1/models/digits-dp')).body;
    assert.equal(model.versions.length, 1, 'exactly one version registered');

    const agg = await aggregateQueue.getJob(aggregatorJobId(runId));
    const outcome = aggregateResultSchema.parse(agg?.returnvalue);
    assert.notEqual(agg?.processedBy, aggVictim);
    // At least the restart after the kill (a starved process losing its lock would add one).
    assert.ok(outcome.restarts >= 1, `restarts ${outcome.restarts}`);
    assert.ok(
      (outcome.resumedFromStep ?? 0) >= 120 && outcome.resumedFromStep! % 10 === 0,
      `resumed from ${outcome.resumedFromStep}`,
    );
    const shard = await shardQueue.getJob(shardJobId(runId, 1));
    assert.equal(await shard?.getState(), 'completed');
    assert.notEqual(shard?.processedBy, shardVictim);

    // The run's keys are gone (a small expiring end marker stays), and so is its checkpoint.
    const redis = new Redis(REDIS_URL);
    try {
      const left = await redis.keys(`${system.prefix}:ps:{${runId}}:*`);
      assert.deepEqual(left, [`${system.prefix}:ps:{${runId}}:ended`]);
    } finally {
      redis.disconnect();
    }
  });

  it('a compress job prunes with a data-parallel fine-tune (masks held by the parameter server); train keeps them', async () => {
    const layers = [
      { type: 'dense', units: 32, activation: 'relu', inputShape: [784] },
      { type: 'dense', units: 10, activation: 'softmax' },
    ];
    const fit = { epochs: 2, batchSize: 32, learningRate: 0.003, validationSplit: 0.1, seed: 1 };
    const submit = async (path: string, body: object) => {
      const res = await system.request('POST', path, body);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const job = await system.waitForJob(res.body.id, undefined, HANG_GUARD_MS);
      assert.equal(job.state, 'completed', JSON.stringify(job));
      return job;
    };
    source = (
      await submit('/v1/jobs/train', { model: { name: 'digits-sparse', layers }, dataset: { builtin: 'mnist' }, fit })
    ).result.model;
    const compressed = await submit('/v1/jobs/compress', {
      source,
      steps: [
        {
          prune: {
            sparsity: 0.8,
            schedule: 'polynomial',
            fineTuneEpochs: 2,
            batchSize: 32,
            learningRate: 0.002,
            distributed: { workers: 2, mode: 'sync' },
          },
        },
      ],
      gate: { maxAccuracyDrop: 0.05 },
    });
    // The fine-tune was a run of the compress job's own: its aggregator walked every global step.
    const outcome = aggregateResultSchema.parse(
      (await aggregateQueue.getJob(aggregatorJobId(runIdOf(compressed.id))))?.returnvalue,
    );
    const plan = makePlan({ trainRows: 9000, workers: 2, batchPerWorker: 32, epochs: 2, seed: 1, shuffle: true });
    assert.equal(outcome.steps, plan.totalSteps);
    assert.deepEqual(Object.keys(outcome.workers).sort(), ['shard-0', 'shard-1']);
    const ev = compressed.result.evaluation;
    assert.ok(ev.source.accuracy - ev.result.accuracy <= 0.05, JSON.stringify(ev));
    const pruned = await kernelZeros(compressed.result.model);
    for (const { n, zeros } of pruned) assert.ok(zeros.size >= Math.floor(0.8 * n), `${zeros.size}/${n}`);
    assert.equal(ev.result.nonZeroParameters, ev.result.parameters - pruned.reduce((a, k) => a + k.zeros.size, 0));

    // Its sparsity shows on disk: weights.bin is stored gzipped, served as stored to a client that
    // accepts gzip (stock tfjs above) and decoded for one that does not.
    const path = `/v1/models/digits-sparse/versions/${compressed.result.model.version}`;
    const meta = (await system.request('GET', path)).body;
    assert.equal(meta.storedAs['weights.bin'].encoding, 'gzip');
    assert.ok(meta.storedAs['weights.bin'].bytes * 2 < meta.artifacts['weights.bin'], JSON.stringify(meta.storedAs));
    assert.ok(ev.result.bytesStored * 2 < ev.result.bytesRaw, JSON.stringify(ev.result));
    const zipped = await system.fetch(`${path}/weights.bin`);
    assert.equal(zipped.headers.get('content-encoding'), 'gzip');
    const plain = await system.fetch(`${path}/weights.bin`, { headers: { 'accept-encoding': 'identity' } });
    assert.equal(plain.headers.get('content-encoding'), null);
    const bytes = Buffer.from(await plain.arrayBuffer());
    assert.equal(bytes.length, meta.artifacts['weights.bin']);
    assert.deepEqual(bytes, Buffer.from(await zipped.arrayBuffer()));

    // Fine-tuning the pruned version data-parallel (async) with fit.prune keeps exactly its zeros.
    const tuned = await submit('/v1/jobs/train', {
      model: { name: 'digits-sparse', from: compressed.result.model },
      dataset: { builtin: 'mnist' },
      fit: { ...fit, epochs: 1, prune: { sparsity: 0.8 } },
      distributed: { workers: 2, mode: 'async' },
    });
    const after = await kernelZeros(tuned.result.model);
    after.forEach(({ zeros }, k) => assert.deepEqual([...zeros].sort(), [...pruned[k]!.zeros].sort(), `kernel ${k}`));
  });

  it('cancelling a compress job in its data-parallel fine-tune stops the run and registers nothing', async () => {
    const versions = async () => (await system.request('GET', '/v1/models/digits-sparse')).body.versions.length;
    const before = await versions();
    const { body } = await system.request('POST', '/v1/jobs/compress', {
      source,
      steps: [{ prune: { sparsity: 0.8, fineTuneEpochs: 50, batchSize: 32, distributed: { workers: 2 } } }],
    });
    const runId = runIdOf(body.id);
    await waitFor(
      'the fine-tune training',
      async () => {
        const job = (await system.request('GET', `/v1/jobs/${body.id}`)).body;
        if (['completed', 'failed', 'cancelled'].includes(job.state)) throw new Error(`job is ${job.state}`);
        return job.progress?.kind === 'prune' && job.progress.epoch >= 1 ? job : undefined;
      },
      HANG_GUARD_MS,
    );
    assert.equal((await system.request('DELETE', `/v1/jobs/${body.id}`)).status, 200);
    const job = await system.waitForJob(body.id, undefined, HANG_GUARD_MS);
    assert.equal(job.state, 'cancelled', JSON.stringify(job));
    // The aggregator saw the abort and ended the run short of its 50 epochs; the shards stopped.
    const agg = await waitFor(
      'the aggregator ended',
      async () => {
        const j = await aggregateQueue.getJob(aggregatorJobId(runId));
        return j && (await j.getState()) === 'completed' ? j : undefined;
      },
      HANG_GUARD_MS,
    );
    assert.equal(aggregateResultSchema.parse(agg.returnvalue).status, 'aborted');
    for (const i of [0, 1])
      await waitFor(
        `shard ${i} ended`,
        async () =>
          ['completed', 'unknown'].includes(await shardQueue.getJobState(shardJobId(runId, i))) ? true : undefined,
        HANG_GUARD_MS,
      );
    assert.equal(await versions(), before, 'nothing registered');
  });

  /** Zero positions of each dense kernel of a version, as stock tfjs loads it from the API. */
  async function kernelZeros(ref: {
    name: string;
    version: number;
  }): Promise<Array<{ n: number; zeros: Set<number> }>> {
    const model = await tf.loadLayersModel(`${system.url}/v1/models/${ref.name}/versions/${ref.version}/model.json`, {
      requestInit: { headers: system.clientHeaders() },
    });
    try {
      return model.layers.map((layer) => {
        const w = layer.getWeights()[0]!.dataSync();
        const zeros = new Set<number>();
        w.forEach((x, i) => x === 0 && zeros.add(i));
        return { n: w.length, zeros };
      });
    } finally {
      model.dispose();
    }
  }
});
