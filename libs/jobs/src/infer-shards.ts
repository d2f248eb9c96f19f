import type { Job, Queue } from 'bullmq';
import {
  buildEnvelope,
  CancelledError,
  inferShardProgressSchema,
  inferShardResultSchema,
  jobOptionsOf,
  JobName,
  throwIfCancelled,
  TqError,
  type InferShardJobData,
  type InferShardProgress,
  type InferShardResult,
  type JobHooks,
  type JobRetention,
} from '@tq/contracts';
import { inferShardJob, type InferShardDeps } from './infer-shard.job';

/** Where a parent's shards run: child jobs on the infer-shard queue (a worker), or in its own process. */
export interface ShardQueue {
  queue: Queue;
  retention?: JobRetention;
  /** Asks whatever runs child job `id` to stop (the cross-process cancel flag the API sets too). */
  cancel(id: string): Promise<void>;
  /** Between two looks at the shards (default 250 ms). */
  pollMs?: number;
}

/** The parent's hooks, its progress aside (the runners report through ShardReport). */
export type ParentHooks = Omit<JobHooks<unknown>, 'onProgress'>;

/** Every shard as far as it got (a finished one: its result); reported by the runners. */
export type ShardReport = (status: readonly ShardStatus[]) => Promise<void>;
export interface ShardStatus {
  rows: number;
  errors: number;
  done: boolean;
}

export interface ShardsDone {
  results: InferShardResult[];
  /** Shards run more than once (a killed worker's), and their rows: the work done twice at most. */
  recomputed: { shards: number; rows: number };
}

/** Child job ids derive from the parent's: a retried parent re-attaches to its shards instead of duplicating them. */
export const inferShardJobId = (parentJobId: string, shard: number): string =>
  `infer-shard-${parentJobId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120)}-${shard}`;

/** Shards one after another in this process (tests, benches): the same body as a child job's. */
export async function runShardsInProcess(
  shards: readonly InferShardJobData[],
  deps: InferShardDeps,
  hooks: ParentHooks,
  report: ShardReport,
): Promise<ShardsDone> {
  const status: ShardStatus[] = shards.map(() => ({ rows: 0, errors: 0, done: false }));
  const results: InferShardResult[] = [];
  for (const [i, shard] of shards.entries()) {
    const shardHooks: JobHooks<InferShardProgress> = {
      ...hooks,
      onProgress: async (p) => {
        status[i] = { rows: p.rows, errors: p.errors, done: false };
        await report(status);
      },
    };
    const result = await inferShardJob(shard, deps, shardHooks);
    results.push(result);
    status[i] = { rows: result.rows, errors: result.errors, done: true };
  }
  return { results, recomputed: { shards: 0, rows: 0 } };
}

/**
 * Enqueues the shards as child jobs (or re-attaches to them) and waits for them all, reporting
 * their progress. A shard that failed for good fails the parent with its reason (its other shards
 * are stopped); a cancel of the parent stops every shard, waiting or running.
 */
export async function runShardsOnQueue(
  shards: readonly InferShardJobData[],
  sq: ShardQueue,
  hooks: ParentHooks,
  report: ShardReport,
  opts: { again?: boolean } = {},
): Promise<ShardsDone> {
  const ids = shards.map((s) => inferShardJobId(s.parentJobId, s.shard));
  // again: shards whose part went missing after they completed run once more (a new job, same id).
  if (opts.again) for (const id of ids) await (await sq.queue.getJob(id))?.remove();
  for (const [i, shard] of shards.entries()) await enqueue(sq, ids[i]!, shard, hooks);
  try {
    for (;;) {
      throwIfCancelled(hooks.signal);
      // States before hashes (see @tq/queue job-view): a shard that completed between reading its
      // hash and its state had no return value yet, and failed the whole attempt (CI, after a kill).
      const states = await Promise.all(ids.map((id) => sq.queue.getJobState(id)));
      const jobs = await Promise.all(ids.map((id) => sq.queue.getJob(id)));
      const failed = states.findIndex((s, i) => s === 'failed' || s === 'unknown' || !jobs[i]);
      if (failed >= 0) throw shardFailure(failed, jobs[failed]);
      await report(jobs.map((j, i) => statusOf(j!, states[i] === 'completed')));
      if (states.every((s) => s === 'completed')) return finished(jobs as Job[], shards);
      await pause(sq.pollMs ?? 250, hooks.signal);
    }
  } catch (err) {
    // A lost lock is no reason to stop the shards: the job goes on in another attempt, which re-attaches.
    if (err instanceof TqError || hooks.signal.reason instanceof CancelledError) await stopShards(sq, ids);
    throw err;
  }
}

async function enqueue(sq: ShardQueue, id: string, shard: InferShardJobData, hooks: ParentHooks): Promise<void> {
  const data = buildEnvelope(JobName.InferShard, shard, { ...hooks.meta, parentJobId: shard.parentJobId });
  const job = await sq.queue.add(JobName.InferShard, data, {
    ...jobOptionsOf(JobName.InferShard, sq.retention),
    jobId: id,
  });
  // A parent retried after its shard gave up (attempts spent on lost workers) gives it fresh attempts.
  if ((await job.getState()) === 'failed')
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
}

function statusOf(job: Job, completed: boolean): ShardStatus {
  if (completed) {
    const result = inferShardResultSchema.safeParse(job.returnvalue).data;
    return { rows: result?.rows ?? 0, errors: result?.errors ?? 0, done: true };
  }
  const progress = inferShardProgressSchema.safeParse(job.progress).data;
  return { rows: progress?.rows ?? 0, errors: progress?.errors ?? 0, done: false };
}

function finished(jobs: readonly Job[], shards: readonly InferShardJobData[]): ShardsDone {
  const results = jobs.map((j) => inferShardResultSchema.parse(j.returnvalue));
  // attemptsStarted counts every run, a killed worker's included: runs past the first recomputed the shard.
  const again = jobs.map((j, i) => (j.attemptsStarted > 1 ? shards[i]!.rows : 0)).filter((rows) => rows > 0);
  return { results, recomputed: { shards: again.length, rows: again.reduce((a, b) => a + b, 0) } };
}

/** The parent fails as its shard did: a shard's TqError (bad table, over budget) is the job's. */
function shardFailure(index: number, job: Job | undefined): Error {
  if (!job) return new Error(`shard ${index}'s job is gone (removed while the job ran)`);
  return new ShardFailedError(index, job.failedReason ?? 'no reason recorded');
}

/** A shard failed for good; unrecoverable, as it was for the shard (it used up its attempts or hit a TqError). */
export class ShardFailedError extends TqError {
  readonly status = 400;
  constructor(index: number, reason: string) {
    super(`shard ${index} failed: ${reason}`);
  }
}

/**
 * Removes the shards not started yet and asks the running ones to stop. A shard a worker takes
 * between reading its state and removing it refuses the remove (BullMQ: locked): it is asked to
 * stop like the running ones, and the cleanup goes on (it threw before, leaving the parts behind).
 */
export async function stopShards(sq: ShardQueue, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const job = await sq.queue.getJob(id);
    if (!job) continue;
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized')
      await job.remove().catch(async (err: unknown) => {
        if ((await job.getState()) !== 'active') throw err;
        await sq.cancel(id);
      });
    else if (state === 'active') await sq.cancel(id);
  }
}

/**
 * Waits (at most `timeoutMs`) until none of the shards runs: a cancelled shard stops at its next
 * chunk, and its parts may only be removed once it can no longer write one.
 */
export async function settleShards(sq: ShardQueue, ids: readonly string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const states = await Promise.all(ids.map(async (id) => (await sq.queue.getJob(id))?.getState()));
    if (!states.includes('active')) return;
    await pause(sq.pollMs ?? 250, new AbortController().signal);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
