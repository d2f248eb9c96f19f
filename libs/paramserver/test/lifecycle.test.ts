import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { aggregateResultSchema, FieldError, localJobMeta, trainRequestSchema, type TrainRequest } from '@tq/contracts';
import { initBackend } from '@tq/ml';
import {
  aggregatorJobId,
  coordinateDistributedTraining,
  runCheckpointPaths,
  runIdOf,
  shardJobId,
} from '@tq/paramserver';
import { mnistSlice, PsTestEnv } from './fixtures/harness';

const ROWS = 400; // 360 training rows
const layers: TrainRequest['model']['layers'] = [
  { type: 'dense', units: 16, activation: 'relu', inputShape: [784] },
  { type: 'dense', units: 10, activation: 'softmax' },
];
const request = (name: string, epochs: number): TrainRequest =>
  trainRequestSchema.parse({
    model: { name, layers },
    dataset: { builtin: 'mnist' },
    fit: { epochs, batchSize: 4, optimizer: 'adam', learningRate: 0.003, validationSplit: 0.1, seed: 2 },
    distributed: { workers: 2, mode: 'sync', checkpointEvery: 25 },
  });

/** Aggregator, shards and coordinator all in this process, so its tensor count covers all of them. */
describe('run lifecycle: flat memory, cancellation', () => {
  const env = new PsTestEnv();
  before(async () => {
    await initBackend();
    await env.setupRun({
      rows: ROWS,
      shardConcurrency: 2,
    });
    env.startCoordinator(ROWS);
  });
  after(() => env.teardown());

  it('a long run keeps a constant number of Redis keys and returns every tensor', async (t) => {
    const warm = await env.train(request('warmup', 1)); // first use of each kernel may cache state
    assert.ok(warm.result.model.version >= 1);
    const tensorsBefore = tf.memory().numTensors;
    const job = await env.submit(request('longrun', 8)); // 8 x 45 = 360 steps
    const runId = runIdOf(job.id!);
    const counts: number[] = [];
    const sampler = (async () => {
      while (!(await job.isCompleted()) && !(await job.isFailed())) {
        counts.push((await env.keys(`ps:{${runId}}:*`)).length);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await job.waitUntilFinished(env.events, 120_000);
    await sampler;
    assert.equal(result.distributed?.steps, 360);
    const running = counts.filter((c) => c > 1); // before the start and after cleanup only the marker (or nothing) exists
    t.diagnostic(
      `${running.length} samples of the run's key count: min ${Math.min(...running)}, max ${Math.max(...running)}`,
    );
    assert.ok(running.length > 20, `only ${running.length} samples`);
    // state, inbox, control, 2 wake lists, 3 kept weight versions (1 chunk each), a payload or two in flight.
    assert.ok(Math.max(...running) <= 12, `up to ${Math.max(...running)} keys`);
    const half = Math.floor(running.length / 2);
    assert.ok(
      Math.max(...running.slice(half)) <= Math.max(...running.slice(0, half)) + 1,
      'no growth in the second half',
    );
    assert.equal(
      tf.memory().numTensors,
      tensorsBefore,
      'every tensor of aggregator, shards and coordinator was disposed',
    );
  });

  it('fine-tunes a registered version (model.from) across workers: lineage names the parent', async () => {
    const base = await env.train(request('tunebase', 1));
    const req = trainRequestSchema.parse({ ...request('tuned', 1), model: { name: 'tuned', from: base.result.model } });
    const { result } = await env.train(req);
    const meta = await env.registry.getVersion(result.model);
    assert.equal(meta.lineage.kind, 'fine-tuned');
    assert.deepEqual(meta.lineage.parent, base.result.model);
    // Another epoch from the trained weights, not from scratch: training loss goes on falling.
    assert.ok(result.metrics.loss < base.result.metrics.loss, `${result.metrics.loss} vs ${base.result.metrics.loss}`);
  });

  it('a model that does not fit the data fails the train job before any child job exists', async () => {
    const bad = trainRequestSchema.parse({
      ...request('misfit', 1),
      model: { name: 'misfit', layers: [{ type: 'dense', units: 10, activation: 'softmax', inputShape: [10] }] },
    });
    const job = await env.submit(bad);
    await assert.rejects(job.waitUntilFinished(env.events, 30_000), /model\.layers\.0\.inputShape/);
    assert.equal(await env.aggregateQueue.getJob(aggregatorJobId(runIdOf(job.id!))), undefined);
  });

  it('a validationSplit that leaves no training rows is a FieldError naming fit.validationSplit (bad input: never retried)', async () => {
    const base = request('nosplit', 1);
    const req = trainRequestSchema.parse({ ...base, fit: { ...base.fit, validationSplit: 0.5 } });
    const deps = {
      redis: env.redis,
      aggregateQueue: env.aggregateQueue,
      shardQueue: env.shardQueue,
      store: env.store,
      registry: env.registry,
      loadDataset: async () => mnistSlice(1), // one row: half of it for validation leaves none to train on
    };
    const hooks = {
      jobId: 'direct-nosplit',
      meta: localJobMeta(),
      signal: new AbortController().signal,
      onProgress: async () => undefined,
      log: () => undefined,
    };
    await assert.rejects(coordinateDistributedTraining(req, deps, hooks), (err: unknown) => {
      assert.ok(err instanceof FieldError, String(err));
      assert.equal(err.field, 'fit.validationSplit');
      return true;
    });
    assert.equal(await env.aggregateQueue.getJob(aggregatorJobId(runIdOf('direct-nosplit'))), undefined);
  });

  it('a cancelled run stops its aggregator and shards, registers nothing, leaves nothing behind', async () => {
    const job = await env.submit(request('cancelled', 50));
    const runId = runIdOf(job.id!);
    await env.waitForAggregator(runId, (p) => p.step >= 30);
    env.cancel(job.id!);
    await assert.rejects(job.waitUntilFinished(env.events, 60_000), /cancelled/);
    const agg = await env.aggregateQueue.getJob(aggregatorJobId(runId));
    assert.equal(await agg?.getState(), 'completed');
    assert.equal(aggregateResultSchema.parse(agg?.returnvalue).status, 'aborted');
    for (const i of [0, 1])
      assert.equal(await (await env.shardQueue.getJob(shardJobId(runId, i)))?.getState(), 'completed');
    assert.equal((await env.registry.versions('cancelled')).length, 0);
    assert.deepEqual(await env.keys(`ps:{${runId}}:*`), [`${env.prefix}:ps:{${runId}}:ended`]);
    assert.equal(await env.hasObjects(runCheckpointPaths(env.store, runId).prefix.prefix), false);
  });
});
