import { hostname } from 'node:os';
import type { WorkerOptions } from 'bullmq';
import { loadConfig } from '@tq/config';

/**
 * Lock settings for CPU-bound processors. They yield the event loop between batches, so BullMQ
 * renews the lock every lockDuration/2 and a job is declared stalled only when its worker died.
 */
export function workerOptions(): Partial<Omit<WorkerOptions, 'connection'>> {
  const config = loadConfig();
  return {
    // Recorded on each job as processedBy, so GET /v1/jobs/:id says which worker runs it.
    name: `${hostname()}:${process.pid}`,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.LOCK_DURATION_MS,
    stalledInterval: config.STALLED_INTERVAL_MS,
    maxStalledCount: 2,
  };
}
