import type { INestApplicationContext } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { isFinalFailure } from '@tq/queue';
import { QueueName } from '@tq/contracts';
import { outcomeOf, throughputOf, type JobMetrics } from '@tq/runtime';

/**
 * Subscribes to the BullMQ worker of every processor in the app: the processors stay unaware of
 * metrics. Durations come from the job's own processedOn / finishedOn (set by the same worker).
 */
export function observeWorkers(app: INestApplicationContext, metrics: JobMetrics): void {
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
      if (queue === QueueName.Train) metrics.trainingThroughput(throughputOf(result));
    });
    // BullMQ emits 'failed' for every attempt; only the last one (no retry follows) finishes the job.
    worker.on('failed', (job, err) => {
      if (job && isFinalFailure(job, err)) metrics.jobFinished(queue, outcomeOf(job.failedReason), seconds(job));
    });
    worker.on('progress', (_job, progress) => {
      if (queue === QueueName.Train) metrics.trainingThroughput(throughputOf(progress));
    });
  }
}
