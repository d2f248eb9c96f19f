import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import {
  ArtifactStore,
  ModelRegistry,
  readBlocksFile,
  writeBlocksFile,
  type NewVersionMeta,
  type VersionWriter,
} from '@tq/storage';
import {
  JobLockLostError,
  RedisJobFence,
  activeListKey,
  jobEffectsKey,
  jobLockKey,
  modelVersionKey,
  scanKeys,
  type FencedJob,
} from '@tq/queue';

const redisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const OPTS = { lockDurationMs: 60_000, recordTtlSeconds: 3600 };

const metaOf = (jobId: string): NewVersionMeta => ({
  inputShape: [4],
  featureCount: 4,
  classes: ['a', 'b'],
  lineage: { kind: 'trained', jobId },
  weightDtype: 'float32',
});

/** A promise and the function that settles it: a write held open until the test lets it go. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('RedisJobFence', () => {
  const prefix = `tqtest-fence-${randomUUID().slice(0, 8)}`;
  let redis: Redis;
  let root: string;
  let registry: ModelRegistry;
  const job = (id: string): FencedJob => ({ id, queueQualifiedName: `${prefix}:train`, prefix });
  /** Attempt `token` of job `id` holds the lock (as BullMQ's moveToActive leaves it). */
  const hold = (id: string, token: string) => redis.set(jobLockKey(job(id)), token, 'PX', 60_000);
  const fenceOf = (id: string, token: string) => new RedisJobFence(redis, job(id), token, OPTS);
  const weights = (out: VersionWriter) => out.put('weights.bin', Buffer.alloc(8));
  /** Every object under a prefix. */
  const keysUnder = async (prefix: string): Promise<string[]> => {
    const keys: string[] = [];
    for await (const { key } of registry.store.blobs.list(prefix)) keys.push(key);
    return keys.sort();
  };

  before(async () => {
    redis = new Redis(redisUrl());
    root = await mkdtemp(join(tmpdir(), 'tq-fence-'));
    registry = new ModelRegistry(new ArtifactStore(root));
  });
  after(async () => {
    for await (const keys of scanKeys(redis, `${prefix}:*`)) if (keys.length) await redis.unlink(...keys);
    redis.disconnect();
    await rm(root, { recursive: true, force: true });
  });

  it("checks BullMQ's own lock key with the token the processor receives", async () => {
    const queueName = 'fenced';
    const queue = new Queue(queueName, { connection: { url: redisUrl() }, prefix });
    const seen: { held?: unknown; stale?: unknown; version?: number } = {};
    const worker = new Worker(
      queueName,
      async (j, token) => {
        const fence = new RedisJobFence(redis, j, token ?? '', OPTS);
        seen.held = await fence.assertHeld().then(
          () => 'held',
          (e: unknown) => e,
        );
        seen.version = await fence.versionFor('bull-model', 4);
        seen.stale = await new RedisJobFence(redis, j, 'not-the-token', OPTS).assertHeld().catch((e: unknown) => e);
      },
      { connection: { url: redisUrl(), maxRetriesPerRequest: null }, prefix },
    );
    try {
      const added = await queue.add('x', {});
      await new Promise<void>((resolve, reject) => {
        worker.on('completed', (j) => j.id === added.id && resolve());
        worker.on('failed', (_j, err) => reject(err));
      });
    } finally {
      await worker.close();
      await queue.close();
    }
    assert.equal(seen.held, 'held');
    assert.equal(seen.version, 5, 'the counter starts above the latest version on disk');
    assert.ok(seen.stale instanceof JobLockLostError, String(seen.stale));
  });

  it('lets exactly one of two overlapping attempts register, and the stale one gets JobLockLostError', async () => {
    await hold('j1', 'first');
    const stalled = gate();
    let firstWrote = false;
    // Attempt 1 gets its number, then stalls while writing (its process SIGSTOPped, its event loop blocked).
    const first = registry.register(
      'twice',
      metaOf('j1'),
      async (out) => {
        await stalled.wait;
        await weights(out);
        firstWrote = true;
      },
      { fence: fenceOf('j1', 'first') },
    );
    await waitUntil(async () => (await redis.hget(jobEffectsKey(job('j1')), 'version:twice')) !== null);
    // Its lock lapses; BullMQ hands the job to attempt 2, which registers the same job's version.
    await hold('j1', 'second');
    const second = await registry.register('twice', metaOf('j1'), weights, { fence: fenceOf('j1', 'second') });
    stalled.open();
    await assert.rejects(first, JobLockLostError);
    assert.ok(firstWrote, 'the stale attempt got as far as its commit');
    assert.equal(second.version, 1);
    assert.deepEqual(
      (await registry.versions('twice')).map((v) => [v.version, v.lineage.jobId]),
      [[1, 'j1']],
    );
    const live = (await registry.getVersion({ name: 'twice', version: 1 })).artifactSet!;
    assert.deepEqual(
      await keysUnder(registry.store.modelsPrefix('twice')),
      ['claim.json', 'metadata.json', `${live}/weights.bin`].map((f) => `models/twice/1/${f}`).sort(),
      "the stale attempt's artifacts are removed; the live version's are untouched",
    );
  });

  it('answers a later attempt with the version an earlier one registered, writing nothing', async () => {
    await hold('j1', 'third');
    let wrote = false;
    const again = await registry.register(
      'twice',
      metaOf('j1'),
      async () => {
        wrote = true;
      },
      { fence: fenceOf('j1', 'third') },
    );
    assert.equal(again.version, 1);
    assert.equal(wrote, false);
    assert.equal((await registry.versions('twice')).length, 1);
  });

  it('refuses a stale attempt before it allocates a number at all', async () => {
    await hold('j2', 'live');
    await assert.rejects(
      registry.register('twice', metaOf('j2'), weights, { fence: fenceOf('j2', 'stale') }),
      JobLockLostError,
    );
    assert.equal(await redis.get(modelVersionKey(prefix, 'twice')), '1', 'no number was spent');
  });

  it('races two live-looking attempts onto one number: one version, both answer it', async () => {
    // Both pass the lock check (the lock moves between the checks and the commits): the create-only commit decides.
    await hold('j3', 'a');
    const fence = fenceOf('j3', 'a');
    const both = await Promise.all([1, 2].map(() => registry.register('raced', metaOf('j3'), weights, { fence })));
    assert.deepEqual(
      both.map((m) => m.version),
      [1, 1],
    );
    assert.equal((await registry.versions('raced')).length, 1);
  });

  it('never reissues a number the disk holds after Redis lost the counter and the records', async () => {
    await hold('j4', 'x');
    await registry.register('lost', metaOf('j4'), weights, { fence: fenceOf('j4', 'x') });
    await hold('j4b', 'y');
    await registry.register('lost', metaOf('j4b'), weights, { fence: fenceOf('j4b', 'y') });
    await redis.del(modelVersionKey(prefix, 'lost'));
    await hold('j5', 'z');
    const next = await registry.register('lost', metaOf('j5'), weights, { fence: fenceOf('j5', 'z') });
    assert.equal(next.version, 3);
    assert.deepEqual(
      (await registry.versions('lost')).map((v) => v.lineage.jobId),
      ['j4', 'j4b', 'j5'],
    );
    // The counter is raised to the floor even when Redis has a lower one.
    await redis.set(modelVersionKey(prefix, 'lost'), '1');
    await hold('j6', 'w');
    assert.equal(await fenceOf('j6', 'w').versionFor('lost', await registry.latestVersion('lost')), 4);
  });

  it("fails clearly when its number is another writer's version", async () => {
    await hold('j7', 'k');
    const fence = fenceOf('j7', 'k');
    const version = await fence.versionFor('taken', 0);
    await registry.register('taken', metaOf('someone-else'), weights); // unfenced: latest + 1, the same number
    await assert.rejects(registry.register('taken', metaOf('j7'), weights, { fence }), (err: Error) => {
      assert.match(err.message, new RegExp(`version ${version} of "taken", allocated to job j7, is held by`));
      assert.ok(!(err instanceof JobLockLostError));
      return true;
    });
  });

  it('keeps the live checkpoint when a stale attempt saves over it', async () => {
    const path = { blobs: registry.store.blobs, key: 'checkpoints/ck/checkpoint.bin' };
    await hold('j8', 'live');
    await writeBlocksFile(path, 'TQCK', { epoch: 3 }, { w: new Float32Array([3]) }, () =>
      fenceOf('j8', 'live').assertHeld(),
    );
    await assert.rejects(
      writeBlocksFile(path, 'TQCK', { epoch: 1 }, { w: new Float32Array([1]) }, () =>
        fenceOf('j8', 'stale').assertHeld(),
      ),
      JobLockLostError,
    );
    assert.deepEqual((await readBlocksFile<{ epoch: number }>(path, 'TQCK'))?.header, { epoch: 3 });
    assert.deepEqual(await keysUnder('checkpoints/ck/'), ['checkpoints/ck/checkpoint.bin']);
  });

  it('takes back a lapsed lock while the job is still active, never once it left the active list', async () => {
    // The lock key expired (the event loop blocked past lockDuration) and the stalled checker has not moved the job.
    await redis.del(jobLockKey(job('j9')));
    await redis.lpush(activeListKey(job('j9')), 'j9');
    await fenceOf('j9', 'blocked').assertHeld();
    assert.equal(await redis.get(jobLockKey(job('j9'))), 'blocked');
    assert.ok((await redis.pttl(jobLockKey(job('j9')))) > 0, 'the lock taken back expires like any other');
    // Taken back by another attempt meanwhile: not this one's.
    await hold('j9', 'other');
    await assert.rejects(fenceOf('j9', 'blocked').assertHeld(), JobLockLostError);
    // Moved back to wait (or finished): gone for good, even with no lock.
    await redis.del(jobLockKey(job('j9')));
    await redis.lrem(activeListKey(job('j9')), 0, 'j9');
    await assert.rejects(fenceOf('j9', 'blocked').assertHeld(), JobLockLostError);
    await assert.rejects(fenceOf('j9', 'blocked').versionFor('lapsed', 0), JobLockLostError);
    assert.equal(await redis.get(jobLockKey(job('j9'))), null);
  });

  it('keeps every key of one job and model in the hash slot of a {tagged} prefix', () => {
    const tagged: FencedJob = { id: '9', queueQualifiedName: '{tq}:train', prefix: '{tq}' };
    for (const key of [jobLockKey(tagged), activeListKey(tagged), jobEffectsKey(tagged), modelVersionKey('{tq}', 'm')])
      assert.ok(key.startsWith('{tq}:'), key);
  });
});

async function waitUntil(probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
