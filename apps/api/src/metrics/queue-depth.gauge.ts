import type { Queue } from 'bullmq';
import { Gauge, type Registry } from 'prom-client';
import { ALL_QUEUES, type QueueName } from '@tq/contracts';

/** The series autoscalers read (deploy/k8s: one KEDA ScaledObject per worker Deployment, on its queue's figure). */
export const QUEUE_DEPTH_METRIC = 'tq_queue_depth';

/**
 * Jobs of one queue that a worker could take now: waiting + prioritized + delayed jobs whose time
 * has come (a retry's backoff that ran out, a delay that passed; a worker promotes them on its next
 * poll, so with no worker they stay in the delayed set). Delayed jobs still in the future are not
 * demand yet, and active jobs are supply already used: the KEDA query adds tq_jobs{state="active"}
 * itself, so that a Deployment does not shrink under its busy pods.
 */
export async function queueDepth(queue: Queue): Promise<number> {
  // bullmq 6.7 scores a delayed job timestamp * 0x1000 + a sequence number, and getDelayedCount(t)
  // counts the scores below t * 0x1000 (getCounts-1.lua): jobs due strictly before t, so t = now + 1
  // includes the ones due this very millisecond.
  const [counts, due] = await Promise.all([
    queue.getJobCounts('waiting', 'prioritized'),
    queue.getDelayedCount(Date.now() + 1),
  ]);
  return (counts.waiting ?? 0) + (counts.prioritized ?? 0) + due;
}

/**
 * tq_queue_depth{queue} for every queue, the internal ones (aggregate, train-shard, datasets) included.
 * Redis away: no series rather than stale or partial ones, and a scrape that still answers. KEDA then
 * gets an empty result and holds its ScaledObject's fallback replicas instead of scaling on old figures.
 */
export function registerQueueDepth(
  registry: Registry,
  queueOf: (name: QueueName) => Queue,
  warn: (message: string) => void,
): void {
  new Gauge({
    name: QUEUE_DEPTH_METRIC,
    help: 'Jobs a worker could take now, by queue: waiting + prioritized + delayed jobs that are due',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const depths = await Promise.all(
          ALL_QUEUES.map(async (queue) => [queue, await queueDepth(queueOf(queue))] as const),
        );
        for (const [queue, depth] of depths) this.set({ queue }, depth);
      } catch (err) {
        warn(`${QUEUE_DEPTH_METRIC} left out: ${err instanceof Error ? err.message : String(err)}`);
      }
    },
  });
}
