import type { Job, JobState as BullState, Queue } from 'bullmq';
import type { RedisClient } from './redis-connection';
import {
  DEFAULT_TENANT,
  isCancelledReason,
  JOB_REGISTRY,
  type JobState,
  type JobView,
  type PublicJobType,
} from '@tq/contracts';

/** BullMQ's finer states folded into the five the API promises. */
export function toApiState(state: BullState | 'unknown', failedReason?: string): JobState {
  switch (state) {
    case 'active':
      return 'active';
    case 'completed':
      return 'completed';
    case 'failed':
      return isCancelledReason(failedReason) ? 'cancelled' : 'failed';
    default:
      return 'waiting';
  }
}

/**
 * The state must be read BEFORE the job hash. BullMQ writes returnvalue (or failedReason) in the
 * same script that moves a job to completed (failed), so a hash read after seeing "completed"
 * carries the result. Read the other way round, a job that finishes between the two reads shows
 * "completed" with a stale hash: result null. A hash newer than the state (the job moved on)
 * shows a result only with the state it belongs to.
 */
export function toJobView(
  job: Job,
  type: PublicJobType,
  stateReadBefore: BullState | 'unknown',
  lockHeld?: boolean,
): JobView {
  const state = toApiState(stateReadBefore, job.failedReason);
  const ended = state === 'completed' || state === 'failed' || state === 'cancelled';
  return {
    id: job.id ?? '',
    tenant: tenantOfJob(job),
    type,
    state,
    progress: job.progress ?? null,
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    error: state === 'failed' || state === 'cancelled' ? (job.failedReason ?? null) : null,
    // Runs ended so far: BullMQ counts those that threw or finished (attemptsMade) apart from those
    // whose worker died (stalledCounter); a job killed twice that then completes ran 3 times.
    attempts: job.attemptsMade + job.stalledCounter,
    worker: job.processedBy ?? null,
    ...(state === 'active' && lockHeld !== undefined ? liveness(job, type, lockHeld) : {}),
    createdAt: new Date(job.timestamp).toISOString(),
    startedAt: state !== 'waiting' && job.processedOn ? new Date(job.processedOn).toISOString() : null,
    finishedAt: ended && job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

/** The tenant in a job's envelope meta; the default one for a job without (added outside the API before tenants). */
export function tenantOfJob(job: Job): string {
  const meta = (job.data as { meta?: { tenant?: unknown } } | undefined)?.meta;
  return typeof meta?.tenant === 'string' ? meta.tenant : DEFAULT_TENANT;
}

/** An active job's worker: alive while it holds the lock; otherwise what happens next. */
function liveness(job: Job, type: PublicJobType, lockHeld: boolean): Pick<JobView, 'workerAlive' | 'note'> {
  if (lockHeld) return { workerAlive: true };
  // This run is one more (TypedWorkerHost counts failed runs and lost workers against attempts).
  const attempts = job.opts.attempts ?? JOB_REGISTRY[type].options.attempts ?? 1;
  const runs = job.attemptsMade + job.stalledCounter + 1;
  const next =
    runs < attempts ? `it will be retried (attempt ${runs + 1} of ${attempts})` : 'it will fail (no attempts left)';
  return { workerAlive: false, note: `its worker ${job.processedBy ?? ''} stopped renewing the job's lock; ${next}` };
}

/**
 * Whether each job's lock (`<queue>:<id>:lock`, which its worker renews every lockDuration/2) is
 * held: one pipelined EXISTS for all of them, so a page of active jobs costs one round trip more.
 */
export async function readLocksHeld(redis: RedisClient, queue: Queue, ids: readonly string[]): Promise<boolean[]> {
  if (ids.length === 0) return [];
  const pipe = redis.pipeline();
  for (const id of ids) pipe.exists(queue.toKey(`${id}:lock`));
  const replies = (await pipe.exec()) ?? [];
  return replies.map(([err, n]) => {
    if (err) throw err;
    return n === 1;
  });
}

/**
 * One job's view, read in the order toJobView needs; undefined when the queue has no such job.
 * With `redis`, an active job's view says whether its worker holds the lock. The lock is read
 * first: read after the state, a job finishing in between (lock released) would show as active
 * with a dead worker; this way round only a job taken over in between could, and that is rarer.
 */
export async function readJobView(
  queue: Queue,
  id: string,
  type: PublicJobType,
  redis?: RedisClient,
): Promise<JobView | undefined> {
  const lockHeld = redis ? (await readLocksHeld(redis, queue, [id]))[0] : undefined;
  const state = await queue.getJobState(id);
  if (state === 'unknown') return undefined;
  const job = await queue.getJob(id);
  return job ? toJobView(job, type, state, lockHeld) : undefined;
}

export const STATES_OF: Record<JobState, BullState[]> = {
  waiting: ['waiting', 'delayed', 'prioritized', 'waiting-children'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
  // Cancelled jobs leave BullMQ for a tombstone (listTombstones); a failed one carrying the cancel
  // reason is only seen for the moment before the worker retires it.
  cancelled: [],
};
