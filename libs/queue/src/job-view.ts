import type { Job, JobState as BullState, Queue } from 'bullmq';
import { isCancelledReason, type JobState, type JobView, type PublicJobType } from '@tq/contracts';

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
export function toJobView(job: Job, type: PublicJobType, stateReadBefore: BullState | 'unknown'): JobView {
  const state = toApiState(stateReadBefore, job.failedReason);
  const ended = state === 'completed' || state === 'failed' || state === 'cancelled';
  return {
    id: job.id ?? '',
    type,
    state,
    progress: job.progress ?? null,
    result: state === 'completed' ? (job.returnvalue ?? null) : null,
    error: state === 'failed' || state === 'cancelled' ? (job.failedReason ?? null) : null,
    attempts: job.attemptsMade,
    worker: job.processedBy ?? null,
    createdAt: new Date(job.timestamp).toISOString(),
    finishedAt: ended && job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

/** One job's view, read in the order toJobView needs; undefined when the queue has no such job. */
export async function readJobView(queue: Queue, id: string, type: PublicJobType): Promise<JobView | undefined> {
  const state = await queue.getJobState(id);
  if (state === 'unknown') return undefined;
  const job = await queue.getJob(id);
  return job ? toJobView(job, type, state) : undefined;
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
