import type { Job, JobState as BullState } from 'bullmq';
import type { JobState, JobView, PublicJobType } from '@tq/contracts';
import { CANCELLED_REASON } from '@tq/contracts';

/** BullMQ's finer states folded into the five the API promises. */
export function toApiState(state: BullState | 'unknown', failedReason?: string): JobState {
  switch (state) {
    case 'active': return 'active';
    case 'completed': return 'completed';
    case 'failed': return failedReason?.includes(CANCELLED_REASON) ? 'cancelled' : 'failed';
    default: return 'waiting';
  }
}

/** `knownState` saves a Redis round trip when the caller fetched the job by state. */
export async function toJobView(job: Job, type: PublicJobType, knownState?: BullState): Promise<JobView> {
  const state = toApiState(knownState ?? (await job.getState()), job.failedReason);
  return {
    id: job.id ?? '',
    type,
    state,
    progress: job.progress ?? null,
    result: job.returnvalue ?? null,
    error: state === 'failed' || state === 'cancelled' ? job.failedReason ?? null : null,
    attempts: job.attemptsMade,
    worker: job.processedBy ?? null,
    createdAt: new Date(job.timestamp).toISOString(),
    finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
  };
}

export const STATES_OF: Record<JobState, BullState[]> = {
  waiting: ['waiting', 'delayed', 'prioritized', 'waiting-children'],
  active: ['active'],
  completed: ['completed'],
  failed: ['failed'],
  cancelled: ['failed'],
};
