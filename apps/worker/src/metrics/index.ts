import type { INestApplicationContext } from '@nestjs/common';
import type { AppConfig } from '@tq/config';
import { serveMetrics } from './metrics-server';
import { observeWorkers } from './observe-workers';
import { WorkerMetrics } from './worker-metrics';

/** Observes this process's BullMQ workers and serves their metrics; returns the port it listens on. */
export async function startWorkerMetrics(
  app: INestApplicationContext,
  config: Pick<AppConfig, 'HOST' | 'WORKER_METRICS_PORT'>,
): Promise<number> {
  const metrics = new WorkerMetrics();
  observeWorkers(app, metrics);
  return (await serveMetrics(metrics.registry, config.HOST, config.WORKER_METRICS_PORT)).port;
}
