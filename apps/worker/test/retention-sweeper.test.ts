import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Queue, QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import Redis from 'ioredis';
import { JobName, PUBLIC_JOB_TYPES, QUEUE_OF_JOB, QueueName, jobOptionsOf, type PublicJobType } from '@tq/contracts';
import { runCheckpointPaths, runIdOf } from '@tq/paramserver';
import { connectionFromConfig, readTombstone, retainedBytes, writeTombstone } from '@tq/queue';
import { ArtifactStore, JobFiles, JobInputStore } from '@tq/storage';
import { deleteKeys } from '../../../test/support/system';
import { CHECKPOINT_NAMING } from '../src/retention/checkpoint-naming';
import { RetentionSweeper, type RetentionBounds, type SweeperOptions } from '../src/retention/retention-sweeper';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOUR = 3_600_000;
const LOOSE: RetentionBounds = { count: 1000, ageMs: HOUR, maxBytes: 1e12 };

interface Payload {
  bytes: number;
  fail?: boolean;
}

/**
 * One private world per test: a queue prefix, an artifact folder, real BullMQ queues and workers
 * (infer and train) whose jobs write an output of `bytes` bytes, and sweepers on them.
 */
class World {
  readonly prefix = `tqtest-ret-${randomUUID().slice(0, 8)}`;
  readonly redis = new Redis(REDIS_URL);
  readonly queues = new Map<PublicJobType, Queue>();
  readonly aggregate: Queue;
  readonly shards: Queue;
  readonly files: JobFiles;
  readonly inputs: JobInputStore;
  private readonly workers: Worker[] = [];
  private readonly events = new Map<PublicJobType, QueueEvents>();
  private readonly clients: Redis[] = [this.redis];

  constructor(
    readonly store: ArtifactStore,
    private readonly root: string,
  ) {
    const connection = connectionFromConfig({ REDIS_URL });
    for (const type of PUBLIC_JOB_TYPES)
      this.queues.set(type, new Queue(QUEUE_OF_JOB[type], { connection, prefix: this.prefix }));
    this.aggregate = new Queue(QueueName.Aggregate, { connection, prefix: this.prefix });
    this.shards = new Queue(QueueName.TrainShard, { connection, prefix: this.prefix });
    this.files = new JobFiles(store, CHECKPOINT_NAMING);
    this.inputs = new JobInputStore(store);
    for (const type of [JobName.Infer, JobName.Train, JobName.Compress] as const) {
      const process = async (job: Job<Payload>) => {
        if (job.data.fail) throw new UnrecoverableError('asked to fail');
        await store.writeOutput(
          job.id!,
          (async function* () {
            yield 'x'.repeat(job.data.bytes);
          })(),
        );
        return { ok: true };
      };
      this.workers.push(new Worker(QUEUE_OF_JOB[type], process, { connection, prefix: this.prefix }));
      this.events.set(type, new QueueEvents(QUEUE_OF_JOB[type], { connection, prefix: this.prefix }));
    }
  }

  async ready(): Promise<void> {
    await Promise.all([...this.events.values()].map((e) => e.waitUntilReady()));
  }

  queue(type: PublicJobType): Queue {
    return this.queues.get(type)!;
  }

  /** Adds a job (with a stored input, as an inline infer job has) and waits until it has finished. */
  async finish(type: JobName.Infer | JobName.Train | JobName.Compress, id: string, data: Payload): Promise<void> {
    await this.inputs.save(id, [[1, 2, 3, 4]]).catch(() => undefined); // an id that names no file: none
    const job = await this.queue(type).add(type, data, { ...jobOptionsOf(type), jobId: id });
    await job.waitUntilFinished(this.events.get(type)!, 60_000).catch(() => undefined);
  }

  sweeper(bounds: RetentionBounds, options: Partial<SweeperOptions> = {}): RetentionSweeper {
    const redis = new Redis(REDIS_URL);
    this.clients.push(redis);
    return new RetentionSweeper(
      {
        redis,
        prefix: this.prefix,
        queues: this.queues,
        aggregateQueue: this.aggregate,
        shardQueue: this.shards,
        files: this.files,
      },
      bounds,
      { orphanEveryMs: HOUR, ...options },
    );
  }

  /** Where a key (or a prefix) of the local store lives: the test ages files and checks the folder itself. */
  path(key: string): string {
    return join(this.root, ...key.replace(/\/$/, '').split('/'));
  }

  /** Whether the job is in BullMQ, and whether its output and stored input are on disk. */
  async has(type: PublicJobType, id: string): Promise<{ job: boolean; output: boolean; input: boolean }> {
    return {
      job: (await this.queue(type).getJobState(id)) !== 'unknown',
      output: await exists(this.path(this.store.outputKey(id))),
      input: await exists(this.path(this.store.inputKey(id))),
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.events.values()].map((e) => e.close()));
    await Promise.all([...this.queues.values(), this.aggregate, this.shards].map((q) => q.close()));
    await deleteKeys(REDIS_URL, `${this.prefix}:*`);
    this.clients.forEach((c) => c.disconnect());
    await rm(this.root, { recursive: true, force: true });
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const KEPT = { job: true, output: true, input: true };
const GONE = { job: false, output: false, input: false };

describe('retention sweeper (real Redis, real BullMQ workers, real files)', () => {
  const worlds: World[] = [];
  const store = new ArtifactStore(join(tmpdir(), 'tq-retention-naming'));
  /** Its own artifact folder too: another world's orphan sweep must not see this one's files. */
  const world = async () => {
    const root = await mkdtemp(join(tmpdir(), 'tq-retention-'));
    const w = new World(new ArtifactStore(root), root);
    worlds.push(w);
    await w.ready();
    return w;
  };

  after(async () => {
    for (const w of worlds) await w.close();
  });

  it('keeps the newest JOB_HISTORY_COUNT per queue: the oldest go first, failed ones too, with their files', async () => {
    const w = await world();
    const ids = ['a', 'b', 'c', 'd', 'e'].map((s) => `infer-count-${s}`);
    await w.finish(JobName.Infer, ids[0]!, { bytes: 10, fail: true });
    for (const id of ids.slice(1)) await w.finish(JobName.Infer, id, { bytes: 10 });
    // Another queue's jobs count against their own queue's bound, not this one's.
    await w.finish(JobName.Train, 'train-count-a', { bytes: 10 });
    assert.equal(await w.queue(JobName.Infer).getJobState(ids[0]!), 'failed');

    const report = await w.sweeper({ ...LOOSE, count: 3 }).sweep();
    assert.ok(report?.complete);
    assert.equal(report.recorded, 6);
    assert.deepEqual(report.removed, ids.slice(0, 2), 'the two oldest, oldest first');
    for (const id of ids.slice(0, 2)) assert.deepEqual(await w.has(JobName.Infer, id), GONE, id);
    for (const id of ids.slice(2)) assert.deepEqual(await w.has(JobName.Infer, id), KEPT, id);
    assert.deepEqual(await w.has(JobName.Train, 'train-count-a'), KEPT);

    const again = await w.sweeper({ ...LOOSE, count: 3 }).sweep();
    assert.deepEqual(
      again,
      { recorded: 0, removed: [], orphans: [], complete: true, fileErrors: [] },
      'within bounds: nothing to do',
    );
  });

  it('removes jobs finished longer ago than the age bound, and keeps younger ones', async () => {
    const w = await world();
    const ageMs = 5000;
    await w.finish(JobName.Infer, 'infer-age-old', { bytes: 10 });
    const oldFinished = (await w.queue(JobName.Infer).getJob('infer-age-old'))!.finishedOn!;
    const sweeper = w.sweeper({ ...LOOSE, ageMs });
    assert.deepEqual((await sweeper.sweep())?.removed, [], 'young yet');
    while (Date.now() <= oldFinished + ageMs) await new Promise((r) => setTimeout(r, 100));
    await w.finish(JobName.Infer, 'infer-age-new', { bytes: 10 });

    assert.deepEqual((await sweeper.sweep())?.removed, ['infer-age-old']);
    assert.deepEqual(await w.has(JobName.Infer, 'infer-age-old'), GONE);
    assert.deepEqual(await w.has(JobName.Infer, 'infer-age-new'), KEPT);
  });

  it('keeps the bytes of finished jobs (Redis and files) under the bound, oldest first across queues', async () => {
    const w = await world();
    const big = 100_000;
    await w.finish(JobName.Infer, 'infer-bytes-1', { bytes: big });
    await w.finish(JobName.Train, 'train-bytes-2', { bytes: big });
    await w.finish(JobName.Infer, 'infer-bytes-3', { bytes: big });
    await w.finish(JobName.Infer, 'infer-bytes-4', { bytes: big });
    const sweeper = w.sweeper({ ...LOOSE, maxBytes: 250_000 });
    const report = await sweeper.sweep();
    assert.deepEqual(report?.removed, ['infer-bytes-1', 'train-bytes-2']);
    assert.deepEqual(await w.has(JobName.Infer, 'infer-bytes-1'), GONE);
    assert.deepEqual(await w.has(JobName.Train, 'train-bytes-2'), GONE);
    assert.deepEqual(await w.has(JobName.Infer, 'infer-bytes-3'), KEPT);
    assert.deepEqual(await w.has(JobName.Infer, 'infer-bytes-4'), KEPT);
    // Each kept job counts its output, its input and its Redis hash: more than the output alone.
    const kept = await retainedBytes(w.redis, w.prefix);
    assert.ok(kept > 2 * big && kept <= 250_000, `retained ${kept} bytes`);
  });

  it('retires a cancelled job (tombstone), a train job with its checkpoints and its run’s child jobs, a compress job with its fine-tune’s', async () => {
    const w = await world();
    const train = 'train-run-1';
    const runId = runIdOf(train);
    const ckpts = CHECKPOINT_NAMING.keysOf(train).map((k) => w.path(w.store.checkpointPrefix(k)));
    for (const dir of ckpts) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'c.ckpt'), 'weights');
    }
    await w.aggregate.add(JobName.Aggregate, {}, { jobId: `ps-agg-${runId}` });
    await w.shards.add(JobName.TrainShard, {}, { jobId: `ps-shard-${runId}-0` });
    await w.shards.add(JobName.TrainShard, {}, { jobId: `ps-shard-${runId}-1` });
    await w.finish(JobName.Train, train, { bytes: 10 });
    // A compress job's data-parallel fine-tune (prune.distributed) has the same children.
    const compress = 'compress-run-1';
    await w.aggregate.add(JobName.Aggregate, {}, { jobId: `ps-agg-${runIdOf(compress)}` });
    await w.shards.add(JobName.TrainShard, {}, { jobId: `ps-shard-${runIdOf(compress)}-0` });
    await w.finish(JobName.Compress, compress, { bytes: 10 });
    await w.finish(JobName.Compress, 'compress-after', { bytes: 10 });
    await w.inputs.save('infer-cancelled', [[1, 2, 3, 4]]);
    const now = new Date().toISOString();
    await writeTombstone(
      w.redis,
      w.prefix,
      {
        id: 'infer-cancelled',
        tenant: 'default',
        type: JobName.Infer,
        state: 'cancelled',
        progress: null,
        result: null,
        error: 'cancelled',
        attempts: 0,
        worker: null,
        createdAt: now,
        finishedAt: now,
      },
      3600,
    );
    await w.finish(JobName.Infer, 'infer-after', { bytes: 10 });
    await w.finish(JobName.Train, 'train-after', { bytes: 10 });

    const report = await w.sweeper({ ...LOOSE, count: 1 }).sweep();
    assert.deepEqual(report?.removed.sort(), [compress, 'infer-cancelled', train]);
    assert.equal(await w.aggregate.getJobState(`ps-agg-${runIdOf(compress)}`), 'unknown');
    assert.equal(await w.shards.getJobState(`ps-shard-${runIdOf(compress)}-0`), 'unknown');
    assert.equal(await readTombstone(w.redis, w.prefix, 'infer-cancelled'), undefined);
    assert.equal(await exists(w.path(w.store.inputKey('infer-cancelled'))), false);
    for (const dir of ckpts) assert.equal(await exists(dir), false, dir);
    assert.equal(await w.aggregate.getJobState(`ps-agg-${runId}`), 'unknown');
    assert.equal(await w.shards.getJobState(`ps-shard-${runId}-0`), 'unknown');
    assert.equal(await w.shards.getJobState(`ps-shard-${runId}-1`), 'unknown');
    assert.deepEqual(await w.has(JobName.Train, 'train-after'), KEPT);
  });

  it('removes an orphan output, input or checkpoint older than an hour, never a live job’s or a young one', async () => {
    const w = await world();
    await w.finish(JobName.Infer, 'infer-live', { bytes: 10 });
    await w.store.writeOutput(
      'infer-orphan',
      (async function* () {
        yield 'x';
      })(),
    );
    await w.inputs.save('infer-orphan-input', [[1]]);
    await w.inputs.save('infer-young-orphan', [[1]]);
    // A table job's failed rows (outputs/<id>.errors.jsonl) belong to <id>, not to a job "<id>.errors".
    await w.store.blobs.put(w.store.outputKey('infer-live', 'errors.jsonl'), '{"row":1}\n');
    const ckpt = w.path(w.store.checkpointPrefix(CHECKPOINT_NAMING.keysOf('train-orphan')[0]!));
    await mkdir(ckpt, { recursive: true });
    await writeFile(join(ckpt, 'c.ckpt'), 'weights');
    const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
    for (const path of [
      w.path(w.store.outputKey('infer-live')),
      w.path(w.store.outputKey('infer-live', 'errors.jsonl')),
      w.path(w.store.inputKey('infer-live')),
      w.path(w.store.outputKey('infer-orphan')),
      w.path(w.store.inputKey('infer-orphan-input')),
      join(ckpt, 'c.ckpt'),
      ckpt,
    ])
      await utimes(path, twoHoursAgo, twoHoursAgo);

    const report = await w.sweeper(LOOSE).sweep();
    assert.deepEqual(report?.orphans.sort(), ['infer-orphan', 'infer-orphan-input', 'train-orphan']);
    assert.equal(await exists(w.path(w.store.outputKey('infer-orphan'))), false);
    assert.equal(await exists(w.path(w.store.inputKey('infer-orphan-input'))), false);
    assert.equal(await exists(ckpt), false);
    assert.equal(await exists(w.path(w.store.inputKey('infer-young-orphan'))), true, 'younger than an hour: kept');
    assert.deepEqual(await w.has(JobName.Infer, 'infer-live'), KEPT);
    assert.equal(await exists(w.path(w.store.outputKey('infer-live', 'errors.jsonl'))), true, "a live job's errors");
    // Once an hour across all sweepers: the next sweep does not look again.
    assert.deepEqual((await w.sweeper(LOOSE).sweep())?.orphans, []);
  });

  it('two sweepers at once: one sweeps, and every job is removed exactly once', async () => {
    const w = await world();
    const [a, b] = [w.sweeper({ ...LOOSE, count: 2 }), w.sweeper({ ...LOOSE, count: 2 })];
    const removed: string[] = [];
    const expected: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) await w.finish(JobName.Infer, `infer-race-${round}-${i}`, { bytes: 10 });
      const reports = await Promise.all([a.sweep(), b.sweep(), a.sweep(), b.sweep()]);
      assert.ok(
        reports.some((r) => r !== undefined),
        'someone swept',
      );
      removed.push(...reports.flatMap((r) => r?.removed ?? []));
      // Of the newest two before this round and these four, the newest two stay.
      expected.push(...(round === 0 ? [] : [`infer-race-${round - 1}-2`, `infer-race-${round - 1}-3`]));
      expected.push(`infer-race-${round}-0`, `infer-race-${round}-1`);
    }
    assert.deepEqual(removed.sort(), expected.sort());
    assert.equal(new Set(removed).size, removed.length, 'no job reported twice');
    assert.deepEqual(await w.has(JobName.Infer, 'infer-race-2-3'), KEPT);
  });

  it('retires a job whose id can name no file (no poison pill that stops every later sweep)', async () => {
    const w = await world();
    const long = `infer-${'x'.repeat(130)}`;
    await w.finish(JobName.Infer, long, { bytes: 10 });
    await w.finish(JobName.Infer, 'infer-short', { bytes: 10 });
    assert.deepEqual((await w.sweeper({ ...LOOSE, count: 1 }).sweep())?.removed, [long]);
    assert.equal(await w.queue(JobName.Infer).getJobState(long), 'unknown');
  });

  it('names checkpoints as the train job and the distributed run do', () => {
    const id = `train-${randomUUID()}`;
    const [own, run] = CHECKPOINT_NAMING.keysOf(id);
    assert.equal(store.checkpointPrefix(run!), runCheckpointPaths(store, runIdOf(id)).prefix.prefix);
    assert.equal(CHECKPOINT_NAMING.jobOf(own!), id);
    assert.equal(CHECKPOINT_NAMING.jobOf(run!), id);
    assert.equal(CHECKPOINT_NAMING.jobOf('something-else'), undefined);
  });
});
