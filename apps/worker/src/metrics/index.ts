import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '@tq/config';
import { serveMetrics } from './metrics-server';
import { observeWorkers } from './observe-workers';
import { Registry } from 'prom-client';
import { JobMetrics, collectProcessMetrics } from '@tq/runtime';

/** Observes this process's BullMQ workers and serves their metrics; returns the port it listens on. */
export async function startWorkerMetrics(
  app: INestApplicationContext,
  config: Pick<AppConfig, 'HOST' | 'WORKER_METRICS_PORT'>,
): Promise<number> {
  // Per process (tq_worker_*): the API's tq_job* series count every worker's jobs from the queue events.
  const registry = new Registry();
  collectProcessMetrics(registry, 'tq_worker_');
  observeWorkers(app, new JobMetrics(registry, 'tq_worker_', 'this worker'));
  return (await serveMetrics(registry, config.HOST, config.WORKER_METRICS_PORT)).port;
}
