import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Redis from 'ioredis';
import { localJobMeta, trainRequestSchema, type JobHooks } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { compressJob, inferJob, runTraining } from '@tq/jobs';
import { InferenceEngine, initBackend, type BackendInfo, type Budgets } from '@tq/ml';
import { JobLockLostError, RedisJobFence, jobLockKey, scanKeys, type FencedJob } from '@tq/queue';
import { ArtifactStore, DatasetStore, JobInputStore, ModelRegistry } from '@tq/storage';
import { localPath } from './local-store';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * The job bodies with a real fence (real Redis): an attempt whose job another attempt holds
 * commits nothing, not a checkpoint, a version or an output; the attempt that holds it commits once.
 */
describe('job bodies behind a fence', () => {
  const prefix = `tqtest-fenced-${randomUUID().slice(0, 8)}`;
  let redis: Redis;
  let root: string;
  let engine: InferenceEngine;
  let deps: {
    registry: ModelRegistry;
    datasets: DatasetStore;
    store: ArtifactStore;
    backend: BackendInfo;
    budgets: Budgets;
  };
  const job = (id: string): FencedJob => ({ id, queueQualifiedName: `${prefix}:q`, prefix });
  /** Hooks of an attempt with token `token`; the job's lock holds `holder`. */
  const attempt = async <P>(id: string, token: string, holder: string): Promise<JobHooks<P>> => {
    await redis.set(jobLockKey(job(id)), holder, 'PX', 60_000);
    return {
      jobId: id,
      meta: localJobMeta(),
      signal: new AbortController().signal,
      onProgress: async () => undefined,
      log: () => undefined,
      fence: new RedisJobFence(redis, job(id), token, { lockDurationMs: 60_000, recordTtlSeconds: 3600 }),
    };
  };

  before(async () => {
    redis = new Redis(redisUrl());
    root = await mkdtemp(join(tmpdir(), 'tq-fenced-'));
    const store = new ArtifactStore(root);
    const registry = new ModelRegistry(store);
    deps = {
      registry,
      datasets: new DatasetStore(store),
      store,
      backend: await initBackend(),
      budgets: loadConfig({}),
    };
    engine = new InferenceEngine({ registry, cacheSize: 2 });
  });
  after(async () => {
    await engine.close();
    for await (const keys of scanKeys(redis, `${prefix}:*`)) if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
    await rm(root, { recursive: true, force: true });
  });

  const request = trainRequestSchema.parse({
    model: {
      name: 'fenced',
      layers: [
        { type: 'dense', units: 8, activation: 'relu', inputShape: [4] },
        { type: 'dense', units: 3, activation: 'softmax' },
      ],
    },
    dataset: { builtin: 'iris' },
    fit: { epochs: 3, batchSize: 16, validationSplit: 0 },
  });
  const checkpointFiles = (id: string) =>
    readdir(localPath(deps.store, deps.store.checkpointPrefix(`train-${id}`))).catch(() => []);

  it('train: a stale attempt saves no checkpoint and registers nothing; the live one registers once', async () => {
    await assert.rejects(runTraining(request, deps, await attempt('t1', 'stale', 'live')), JobLockLostError);
    assert.deepEqual(await checkpointFiles('t1'), [], 'not even the first epoch was saved');
    assert.equal(await deps.registry.latestVersion('fenced'), 0);
    const live = await runTraining(request, deps, await attempt('t1', 'live', 'live'));
    assert.deepEqual(live.model, { name: 'fenced', version: 1 });
    // A later attempt (the job retried after its worker vanished) answers the same version.
    const later = await runTraining(request, deps, await attempt('t1', 'later', 'later'));
    assert.deepEqual(later.model, live.model);
    assert.deepEqual(
      (await deps.registry.versions('fenced')).map((v) => [v.version, v.lineage.jobId]),
      [[1, 't1']],
    );
  });

  it('compress: a stale attempt registers no compressed version', async () => {
    const parsed = {
      source: { name: 'fenced', version: 1 },
      targetName: 'fenced-small',
      quantize: { dtype: 'uint8' as const },
    };
    await assert.rejects(compressJob(parsed, deps, await attempt('c1', 'stale', 'live')), JobLockLostError);
    assert.equal(await deps.registry.latestVersion('fenced-small'), 0);
    const made = await compressJob(parsed, deps, await attempt('c1', 'live', 'live'));
    assert.deepEqual(made.model, { name: 'fenced-small', version: 1 });
  });

  it('infer: a stale attempt leaves no output, not even a partial one', async () => {
    const inputs = new JobInputStore(deps.store);
    const stored = await inputs.save('i1', [[5.1, 3.5, 1.4, 0.2]]);
    const data = { model: { name: 'fenced', version: 1 }, input: { stored }, batchSize: 1024 };
    await assert.rejects(
      inferJob(data, { ...deps, engine, inputs }, await attempt('i1', 'stale', 'live')),
      JobLockLostError,
    );
    const outputs = localPath(deps.store, deps.store.outputsPrefix());
    assert.deepEqual(
      (await readdir(outputs)).filter((f) => f.startsWith('i1')),
      [],
    );
    const done = await inferJob(data, { ...deps, engine, inputs }, await attempt('i1', 'live', 'live'));
    assert.equal(done.rows, 1);
    assert.deepEqual(
      (await readdir(outputs)).filter((f) => f.startsWith('i1')),
      ['i1.jsonl'],
    );
  });
});
