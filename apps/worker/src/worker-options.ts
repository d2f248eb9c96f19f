import { hostname } from 'node:os';
import type { WorkerOptions } from 'bullmq';
import { JOB_REGISTRY, type JobName } from '@tq/contracts';
import { loadConfig } from '@tq/config';

/**
 * Worker settings of the queue that carries `job`. Lock: CPU-bound processors yield the event loop
 * between batches, so BullMQ renews the lock every lockDuration/2 and a job is declared stalled only
 * when its worker died (or froze): with the defaults it is taken over within 15 s (config.schema.ts).
 */
export function workerOptions(job: JobName): Partial<Omit<WorkerOptions, 'connection'>> {
  const config = loadConfig();
  return {
    // Recorded on each job as processedBy, so GET /v1/jobs/:id says which worker runs it.
    name: `${hostname()}:${process.pid}`,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.LOCK_DURATION_MS,
    stalledInterval: config.STALLED_INTERVAL_MS,
    maxStalledCount: maxStalledCountOf(job),
    // The wait before the main loop fetches again after a lost connection (BullMQ's default: 15 s).
    runRetryDelay: Math.min(1000, config.REDIS_RETRY_MAX_MS),
  };
}

/**
 * A job whose worker died is retried like one that threw. BullMQ counts the two apart: attemptsMade
 * (atm) grows when a run throws, the stalled counter (stc) when its worker dies, and the stall
 * check fails a job once stc > maxStalledCount ("job stalled more than allowable limit"). So
 * `attempts - 1` stalls are retried and the one after fails it, as the last of `attempts` throws
 * does; TypedWorkerHost counts a mix of the two (runsSoFar) against `attempts` as well.
 */
export function maxStalledCountOf(job: JobName): number {
  return Math.max(0, (JOB_REGISTRY[job].options.attempts ?? 1) - 1);
}
