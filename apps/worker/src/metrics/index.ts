import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import type { AppConfig } from '@tq/config';
import { JobMetrics, collectProcessMetrics, serveMetrics } from '@tq/runtime';
import { observeWorkers } from './observe-workers';

export interface WorkerMetricsServer {
  port: number;
  /** Starts counting the jobs of the app's BullMQ workers. */
  observe(app: INestApplicationContext): void;
}

/**
 * Serves this process's metrics (tq_worker_*; the API's tq_job* series count every worker's jobs
 * from the queue events). Called before the app starts consuming: a port that is taken fails the
 * start before any job is taken, instead of ending a process that holds one.
 */
export async function serveWorkerMetrics(
  config: Pick<AppConfig, 'HOST' | 'WORKER_METRICS_PORT'>,
): Promise<WorkerMetricsServer> {
  const registry = new Registry();
  collectProcessMetrics(registry, 'tq_worker_');
  const jobs = new JobMetrics(registry, 'tq_worker_', 'this worker');
  const { port } = await serveMetrics(registry, config.HOST, config.WORKER_METRICS_PORT);
  return { port, observe: (app) => observeWorkers(app, jobs) };
}
