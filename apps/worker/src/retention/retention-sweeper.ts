import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { RedisClient } from '@tq/queue';
import { JobName, PUBLIC_JOB_TYPES, QUEUE_OF_JOB, type PublicJobType, tenantSchema } from '@tq/contracts';
import { aggregatorJobId, runIdOf, shardJobId } from '@tq/paramserver';
import { cancelKey, deleteTombstone, forgetFinished, readTombstone, recordFinished, retentionKeys } from '@tq/queue';
import type { JobFile, JobFiles } from '@tq/storage';

/** The three bounds on finished public jobs: per queue by count, and by age and total bytes. */
export interface RetentionBounds {
  count: number;
  ageMs: number;
  maxBytes: number;
}

export interface SweeperOptions {
  /** Lease of the sweep lock; a sweep stops starting work at half of it, so it never outlives it. */
  lockTtlMs: number;
  /** How far back each sweep re-reads BullMQ's finished sets (finish times come from many clocks). */
  reconcileMarginMs: number;
  /** How often (across all sweepers) orphan files are looked for, and the finished sets read whole. */
  orphanEveryMs: number;
  /** Files younger than this are never orphans (an input is written just before its job is added). */
  orphanMinAgeMs: number;
  /** Entries per Redis round trip. */
  batch: number;
}

export const DEFAULT_SWEEPER_OPTIONS: SweeperOptions = {
  lockTtlMs: 120_000,
  // Finish times are stamped by the worker that finished the job: 15 s covers clock skew between
  // hosts many times over, and the hourly whole read catches anything later still.
  reconcileMarginMs: 15_000,
  orphanEveryMs: 3_600_000,
  orphanMinAgeMs: 3_600_000,
  batch: 500,
};

export interface SweeperDeps {
  redis: RedisClient;
  prefix: string;
  /** Every public job type's queue. */
  queues: ReadonlyMap<PublicJobType, Queue>;
  /** Where a distributed train run's child jobs live. */
  aggregateQueue: Queue;
  shardQueue: Queue;
  files: JobFiles;
}

export interface SweepReport {
  /** Finished jobs newly found in BullMQ's sets. */
  recorded: number;
  /** Jobs removed (job, files, tombstone), oldest first per bound. */
  removed: string[];
  /** Job files removed because their job no longer exists. */
  orphans: string[];
  /** False when the sweep stopped early (its time was up, or it was aborted): the next one goes on. */
  complete: boolean;
  /**
   * Jobs removed whose files could not all be deleted (EACCES, EBUSY, ...), with the reason: their
   * entry is forgotten all the same, so one stuck file never stops retention; the hourly orphan
   * sweep tries those files again.
   */
  fileErrors: string[];
}

/** The train-shard schema allows at most 64 workers per run. */
const MAX_SHARDS = 64;

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Retention of finished public jobs by age, count (per queue) and bytes (all queues), files included.
 *
 * Why this shape:
 * - BullMQ's own trimming (removeOnComplete / removeOnFail) drops a job's hash but not its output,
 *   input or checkpoints, and bounds count and age only, never bytes. For public jobs it is now a
 *   far backstop (contracts' jobOptionsOf) and this sweeper does the work.
 * - The record of finished jobs is built from BullMQ's own finished sets (completed, failed: sorted
 *   by finish time), read incrementally from a per-set mark: no hook in the job path, and a worker
 *   killed right after finishing a job loses nothing (the job is in BullMQ's set, the next sweep
 *   sees it). Each new entry is sized once (Redis MEMORY USAGE of the job hash and its logs, plus
 *   its files) into the retention index (@tq/queue retention-index); cancelled jobs, which leave
 *   BullMQ, are recorded by writeTombstone.
 * - One sweeper at a time: a lock (SET NX PX, released only by its holder's token). Every worker
 *   runs a RetentionService; whoever gets the lock sweeps. The entry of a removed job is forgotten
 *   by a script that answers 1 to one caller only, so even two overlapping sweeps report (and
 *   subtract the bytes of) each job once; the removals themselves are idempotent.
 * - Removal, oldest first while a bound is exceeded: the BullMQ job, the children of a train job's
 *   distributed run or a compress job's data-parallel fine-tune (ps-agg-<run>, ps-shard-<run>-<i>;
 *   else BullMQ's count and age bound them), the job's files (JobFiles: output, stored input,
 *   checkpoints), its tombstone and cancel flag. An entry
 *   whose job is back in play (retried from the dashboard) is only forgotten: it is recorded again
 *   when it finishes.
 * - Every orphanEveryMs (one sweeper, through a SET NX PX marker) the finished sets are read whole
 *   (whatever the incremental read missed) and files older than orphanMinAgeMs whose job exists
 *   nowhere (not in a queue, not in the index) are removed: jobs removed from the dashboard, a crash
 *   between removing a job and its files, BullMQ's backstop.
 */
export class RetentionSweeper {
  private readonly options: SweeperOptions;
  private readonly typeOfQueue = new Map<string, PublicJobType>(PUBLIC_JOB_TYPES.map((t) => [QUEUE_OF_JOB[t], t]));
  private memoryUsage = true;

  constructor(
    private readonly deps: SweeperDeps,
    private readonly bounds: RetentionBounds,
    options: Partial<SweeperOptions> = {},
  ) {
    this.options = { ...DEFAULT_SWEEPER_OPTIONS, ...options };
  }

  private key(name: string): string {
    return `${this.deps.prefix}:{tq-retention}:${name}`;
  }

  /** One sweep if the lock is free; undefined when another sweeper holds it. */
  async sweep(signal?: AbortSignal): Promise<SweepReport | undefined> {
    const { redis } = this.deps;
    const token = randomUUID();
    if (!(await redis.set(this.key('lock'), token, 'PX', this.options.lockTtlMs, 'NX'))) return undefined;
    const deadline = Date.now() + this.options.lockTtlMs / 2;
    const stop = () => signal?.aborted === true || Date.now() > deadline;
    const report: SweepReport = { recorded: 0, removed: [], orphans: [], complete: false, fileErrors: [] };
    this.fileErrors = report.fileErrors;
    let whole = false;
    try {
      whole = (await redis.set(this.key('orphans'), '1', 'PX', this.options.orphanEveryMs, 'NX')) === 'OK';
      for (const queue of this.deps.queues.values()) report.recorded += await this.reconcile(queue, whole, stop);
      await this.enforce(report, stop);
      if (whole && !stop()) report.orphans = await this.removeOrphans(stop);
      report.complete = !stop();
      return report;
    } catch (err) {
      // The hourly pass did not happen: the next sweep (any sweeper) does it.
      if (whole) await redis.del(this.key('orphans')).catch(() => undefined);
      throw err;
    } finally {
      await redis.eval(RELEASE, 1, this.key('lock'), token);
    }
  }

  /** Records the jobs that finished since this queue's mark (minus the margin), or all of them. */
  private async reconcile(queue: Queue, whole: boolean, stop: () => boolean): Promise<number> {
    const { redis, prefix } = this.deps;
    const { index } = retentionKeys(prefix, queue.name);
    let recorded = 0;
    for (const set of ['completed', 'failed'] as const) {
      const field = `${queue.name}:${set}`;
      const mark = Number((await redis.hget(this.key('marks'), field)) ?? Number.NaN);
      const from = whole || !Number.isFinite(mark) ? '-inf' : String(mark - this.options.reconcileMarginMs);
      let newest = Number.isFinite(mark) ? mark : 0;
      for (let offset = 0; ;) {
        const flat = await redis.zrangebyscore(
          queue.keys[set]!,
          from,
          '+inf',
          'WITHSCORES',
          'LIMIT',
          offset,
          this.options.batch,
        );
        const page = pairs(flat);
        offset += page.length;
        const scores = await pipelined(redis, (p) => page.forEach(([id]) => p.zscore(index, id)));
        const fresh = page.filter((_, i) => scores[i] === null);
        if (fresh.length) {
          const bytes = await this.sizes(
            queue,
            fresh.map(([id]) => id),
          );
          const jobs = fresh.map(([id, finishedAt], i) => ({ id, finishedAt, bytes: bytes[i] ?? 0 }));
          recorded += await recordFinished(redis, prefix, queue.name, jobs);
        }
        newest = Math.max(newest, ...page.map(([, at]) => at));
        if (page.length < this.options.batch || stop()) break;
      }
      await redis.hset(this.key('marks'), field, String(newest));
    }
    return recorded;
  }

  /** Bytes of each job: its hash and logs in Redis, and its files. */
  private async sizes(queue: Queue, ids: string[]): Promise<number[]> {
    const tenants = await this.tenantsOf(queue, ids);
    const files = Promise.all(ids.map((id, i) => this.deps.files.bytes(id, tenants[i])));
    const redisBytes = await this.redisBytes(queue, ids);
    return (await files).map((b, i) => b + (redisBytes[i] ?? 0));
  }

  /** Each job's tenant, from its envelope in BullMQ; undefined for a job gone or without one. */
  private async tenantsOf(queue: Queue, ids: string[]): Promise<Array<string | undefined>> {
    const data = await pipelined(this.deps.redis, (p) => ids.forEach((id) => p.hget(queue.toKey(id), 'data')));
    return data.map((raw) => {
      if (typeof raw !== 'string') return undefined;
      try {
        const parsed = tenantSchema.safeParse((JSON.parse(raw) as { meta?: { tenant?: unknown } }).meta?.tenant);
        return parsed.success ? parsed.data : undefined;
      } catch {
        return undefined; // not an envelope: every tenant is looked in
      }
    });
  }

  private async redisBytes(queue: Queue, ids: string[]): Promise<number[]> {
    const { redis } = this.deps;
    if (this.memoryUsage) {
      try {
        const usage = await pipelined(redis, (p) =>
          ids.forEach((id) => {
            p.call('MEMORY', 'USAGE', queue.toKey(id));
            p.call('MEMORY', 'USAGE', `${queue.toKey(id)}:logs`);
          }),
        );
        return ids.map((_, i) => Number(usage[2 * i] ?? 0) + Number(usage[2 * i + 1] ?? 0));
      } catch {
        this.memoryUsage = false; // MEMORY is disabled on some hosted Redis: the stored fields' lengths instead
      }
    }
    const fields = ['data', 'returnvalue', 'stacktrace', 'progress', 'failedReason'];
    const lengths = await pipelined(redis, (p) =>
      ids.forEach((id) => fields.forEach((f) => p.hstrlen(queue.toKey(id), f))),
    );
    return ids.map((_, i) => fields.reduce((sum, _f, j) => sum + Number(lengths[i * fields.length + j] ?? 0), 0));
  }

  /** Removes the oldest entries while a bound is exceeded: age and count per queue, then bytes over all. */
  private async enforce(report: SweepReport, stop: () => boolean): Promise<void> {
    const { redis, prefix } = this.deps;
    const { batch } = this.options;
    const cutoff = Date.now() - this.bounds.ageMs;
    for (const queue of this.deps.queues.values()) {
      const { index } = retentionKeys(prefix, queue.name);
      while (!stop()) {
        const old = await redis.zrangebyscore(index, '-inf', `(${cutoff}`, 'LIMIT', 0, batch);
        if (old.length === 0) break;
        report.removed.push(...(await this.remove(queue, old)));
      }
      while (!stop()) {
        const over = (await redis.zcard(index)) - this.bounds.count;
        if (over <= 0) break;
        report.removed.push(
          ...(await this.remove(queue, await redis.zrange(index, '0', String(Math.min(over, batch) - 1)))),
        );
      }
    }
    while (!stop()) {
      let total = Number((await redis.get(retentionKeys(prefix, '').total)) ?? 0);
      if (total <= this.bounds.maxBytes) break;
      // The oldest entries of every queue, merged by finish time, taken until the total fits.
      const heads: Array<{ queue: Queue; id: string; at: number; bytes: number }> = [];
      for (const queue of this.deps.queues.values()) {
        const k = retentionKeys(prefix, queue.name);
        const page = pairs(await redis.zrange(k.index, '0', String(batch - 1), 'WITHSCORES'));
        const sizes = page.length ? await redis.hmget(k.sizes, ...page.map(([id]) => id)) : [];
        page.forEach(([id, at], i) => heads.push({ queue, id, at, bytes: Number(sizes[i] ?? 0) }));
      }
      heads.sort((a, b) => a.at - b.at);
      const victims: typeof heads = [];
      for (const h of heads) {
        if (total <= this.bounds.maxBytes) break;
        victims.push(h);
        total -= h.bytes;
      }
      if (victims.length === 0) break;
      // Oldest first: consecutive victims of one queue go together.
      for (let i = 0; i < victims.length;) {
        const queue = victims[i]!.queue;
        const ids: string[] = [];
        for (; i < victims.length && victims[i]!.queue === queue; i++) ids.push(victims[i]!.id);
        report.removed.push(...(await this.remove(queue, ids)));
      }
    }
  }

  /** Where removeJob notes files it could not delete (the running sweep's report). */
  private fileErrors: string[] = [];

  /** Removes these finished jobs with everything they left; the ids whose entry this call forgot. */
  private async remove(queue: Queue, ids: string[]): Promise<string[]> {
    for (const id of ids) await this.removeJob(queue, id);
    return forgetFinished(this.deps.redis, this.deps.prefix, queue.name, ids);
  }

  private async removeJob(queue: Queue, id: string): Promise<void> {
    const state = await queue.getJobState(id);
    if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return; // back in play
    // Read before the job goes: its envelope's tenant, else its tombstone's (a cancelled job).
    const tenant =
      (await this.tenantsOf(queue, [id]))[0] ??
      (await readTombstone(this.deps.redis, this.deps.prefix, id).catch(() => undefined))?.tenant;
    // 0: it was taken meanwhile (a retry): it keeps its files and is recorded again when it finishes.
    if (state !== 'unknown' && (await queue.remove(id)) === 0 && (await queue.getJobState(id)) !== 'unknown') return;
    const type = this.typeOfQueue.get(queue.name);
    // Train runs, and compress jobs' data-parallel fine-tunes (prune.distributed), have children.
    if (type === JobName.Train || type === JobName.Compress) await this.removeChildren(id);
    await this.deps.files.remove(id, tenant).catch((err: unknown) => {
      this.fileErrors.push(`${id}: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (type) await deleteTombstone(this.deps.redis, this.deps.prefix, { id, type });
    await this.deps.redis.del(cancelKey(this.deps.prefix, id));
  }

  /** A distributed train run's aggregator and shard jobs (their ids derive from the train job's). */
  private async removeChildren(parentId: string): Promise<void> {
    const runId = runIdOf(parentId);
    const { aggregateQueue, shardQueue } = this.deps;
    const children = [
      { queue: aggregateQueue, id: aggregatorJobId(runId) },
      ...Array.from({ length: MAX_SHARDS }, (_, i) => ({ queue: shardQueue, id: shardJobId(runId, i) })),
    ];
    const exists = await pipelined(this.deps.redis, (p) => children.forEach((c) => p.exists(c.queue.toKey(c.id))));
    for (const [i, c] of children.entries()) if (Number(exists[i]) === 1) await c.queue.remove(c.id);
  }

  /** Files older than orphanMinAgeMs whose job is in no public queue and no index; removed. */
  private async removeOrphans(stop: () => boolean): Promise<string[]> {
    const cutoff = Date.now() - this.options.orphanMinAgeMs;
    const removed: string[] = [];
    let chunk: JobFile[] = [];
    const flush = async () => {
      const alive = await this.alive(chunk);
      for (const [i, file] of chunk.entries())
        if (!alive[i]) {
          await this.deps.files.removeFile(file);
          removed.push(file.jobId);
        }
      chunk = [];
    };
    for await (const file of this.deps.files.list()) {
      if (stop()) break;
      if (file.mtimeMs >= cutoff) continue;
      chunk.push(file);
      if (chunk.length >= this.options.batch) await flush();
    }
    if (chunk.length && !stop()) await flush();
    return removed;
  }

  /** Whether each file's job still exists: in a public queue, in the index, or (a run) as an aggregator. */
  private async alive(files: JobFile[]): Promise<boolean[]> {
    const { redis, prefix } = this.deps;
    const queues = [...this.deps.queues.values()];
    const perFile = queues.length * 2 + 1;
    const answers = await pipelined(redis, (p) =>
      files.forEach((f) => {
        for (const q of queues) {
          p.exists(q.toKey(f.jobId));
          p.zscore(retentionKeys(prefix, q.name).index, f.jobId);
        }
        p.exists(this.deps.aggregateQueue.toKey(aggregatorJobId(runIdOf(f.jobId))));
      }),
    );
    return files.map((_, i) =>
      answers.slice(i * perFile, (i + 1) * perFile).some((a) => a !== null && a !== 0 && a !== '0'),
    );
  }
}

/** [member, score] pairs of a WITHSCORES reply. */
function pairs(flat: string[]): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, Number(flat[i + 1])]);
  return out;
}

/** Runs the commands `fill` queues in one pipeline; their results, throwing the first error. */
async function pipelined(
  redis: RedisClient,
  fill: (p: ReturnType<RedisClient['pipeline']>) => void,
): Promise<unknown[]> {
  const pipe = redis.pipeline();
  fill(pipe);
  const results = (await pipe.exec()) ?? [];
  return results.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}
