import type { INestApplicationContext } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { QueueName } from '@tq/contracts';
import { outcomeOf, type WorkerMetrics } from './worker-metrics';

/** samplesPerSec of a train progress report or result, when it has one. */
function throughput(value: unknown): number | undefined {
  const sps = (value as { samplesPerSec?: unknown } | null)?.samplesPerSec;
  return typeof sps === 'number' && sps > 0 ? sps : undefined;
}

/**
 * Subscribes to the BullMQ worker of every processor in the app: the processors stay unaware of
 * metrics. Durations come from the job's own processedOn / finishedOn (set by the same worker).
 */
export function observeWorkers(app: INestApplicationContext, metrics: WorkerMetrics): void {
  const hosts = app
    .get(DiscoveryService)
    .getProviders()
    .map((p) => p.instance as unknown)
    .filter((i): i is WorkerHost => i instanceof WorkerHost);
  for (const host of hosts) {
    const worker = host.worker;
    const queue = worker.name as QueueName;
    const seconds = (job: Job) =>
      job.processedOn && job.finishedOn ? (job.finishedOn - job.processedOn) / 1000 : undefined;
    worker.on('completed', (job, result) => {
      metrics.jobFinished(queue, 'completed', seconds(job));
      const sps = queue === QueueName.Train ? throughput(result) : undefined;
      if (sps !== undefined) metrics.trainingThroughput(sps);
    });
    worker.on('failed', (job) => {
      if (job) metrics.jobFinished(queue, outcomeOf(job.failedReason), seconds(job));
    });
    worker.on('progress', (_job, progress) => {
      const sps = queue === QueueName.Train ? throughput(progress) : undefined;
      if (sps !== undefined) metrics.trainingThroughput(sps);
    });
  }
}
