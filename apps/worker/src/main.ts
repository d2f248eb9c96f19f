import 'reflect-metadata';
import { setFlagsFromString } from 'node:v8';
import { ConsoleLogger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig, logLevels, workerV8Flags } from '@tq/config';
import { runAtNice } from '@tq/runtime';
import { serveWorkerMetrics } from './metrics';
import { WorkerModule } from './worker.module';

/** A worker is an application context (no HTTP server): BullMQ workers for WORKER_QUEUES, closed on SIGTERM. */
async function bootstrap(): Promise<void> {
  const config = loadConfig();
  // Read by V8 when it collects, so they apply when set here (measured: bench/fleet, bench/ingest).
  for (const flag of workerV8Flags(config)) setFlagsFromString(flag);
  const logger = new ConsoleLogger(`worker-${process.pid}`, { json: config.LOG_JSON, logLevels: logLevels(config) });
  const { refused } = runAtNice(config.WORKER_NICE);
  if (refused) logger.warn(`WORKER_NICE ${config.WORKER_NICE} not applied (${refused})`);
  const metrics = await serveWorkerMetrics(config);
  const app = await NestFactory.createApplicationContext(WorkerModule.forQueues(config.WORKER_QUEUES), { logger });
  app.enableShutdownHooks();
  metrics.observe(app);
  logger.log(
    `serving queues: ${config.WORKER_QUEUES.join(', ')} (concurrency ${config.WORKER_CONCURRENCY}); metrics http://${config.HOST}:${metrics.port}/metrics`,
  );
}

void bootstrap();
