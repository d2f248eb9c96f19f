import type { JobMeta } from './job-envelope';
import type { JobFence } from './job-fence';

/**
 * What every job body gets from the process that runs it, whatever runs it (a BullMQ processor,
 * a test, a bench): who the job is, where progress goes, and when to stop. Job bodies take
 * `(data, deps, hooks)` and never see a BullMQ Job.
 */
export interface JobHooks<P> {
  /** The job's id: ids of child jobs, checkpoints and outputs derive from it. */
  readonly jobId: string;
  /** Who submitted the job (tenant, request id); child jobs carry their parent's. */
  readonly meta: JobMeta;
  /**
   * Aborted when the job is cancelled (a DELETE from any process; reason CancelledError) or this
   * attempt lost its job lock (reason JobLockLostError: the job goes on elsewhere). Loops
   * check it between batches (`throwIfCancelled(signal)`); waits pass it to whatever they await.
   */
  readonly signal: AbortSignal;
  /** Reports progress (BullMQ progress, SSE, the dashboard). */
  readonly onProgress: (progress: P) => Promise<void>;
  /** A line for the job's log (shown in the dashboard) and the process log. */
  readonly log: (line: string) => void;
  /**
   * Guards this attempt's commits (versions, outputs, checkpoints): set by the worker's processor,
   * absent where nothing else can run the job (tests, benches), which then commit unguarded.
   */
  readonly fence?: JobFence;
}
