import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Job } from 'bullmq';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ALL_QUEUES, CANCELLED_REASON, JobName } from '@tq/contracts';
import { JobProducer } from '@tq/queue';
import { collectProcessMetrics } from '@tq/runtime';
import { JobEventsService, type JobEvent } from '../jobs/job-events.service';

/**
 * Prometheus metrics: job counts per queue and state (read from Redis at scrape time, so every
 * worker's work counts), job durations and training throughput (from the queue event stream).
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly logger = new Logger('metrics');
  private readonly duration = new Histogram({
    name: 'tq_job_duration_seconds',
    help: 'Processing time of finished jobs',
    labelNames: ['queue', 'outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });
  private readonly finished = new Counter({
    name: 'tq_jobs_finished_total',
    help: 'Jobs finished, by queue and outcome',
    labelNames: ['queue', 'outcome'],
    registers: [this.registry],
  });
  // One series, kept after the job ends (a per-job series removed at the end left no sample to scrape).
  private readonly samplesPerSec = new Gauge({
    name: 'tq_training_samples_per_second',
    help: 'Latest training throughput reported by a train job (progress or result)',
    registers: [this.registry],
  });

  constructor(
    private readonly producer: JobProducer,
    private readonly events: JobEventsService,
  ) {
    const producerRef = this.producer;
    new Gauge({
      name: 'tq_jobs',
      help: 'Jobs by queue and state',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        for (const queue of ALL_QUEUES) {
          const counts = await producerRef
            .queue(queue)
            .getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children');
          for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
        }
      },
    });
    collectProcessMetrics(this.registry, 'tq_api_');
  }

  onModuleInit(): void {
    // observe() reads Redis: a rejection must be logged here, unhandled it would end the process.
    this.events.on('event', (event: JobEvent) => {
      this.observe(event).catch((err: unknown) =>
        this.logger.error(`metrics for job ${event.jobId}: ${err instanceof Error ? err.stack : String(err)}`),
      );
    });
  }

  private async observe(event: JobEvent): Promise<void> {
    if (event.kind === 'progress') {
      const sps = throughput(event.data);
      if (event.type === JobName.Train && sps !== undefined) this.samplesPerSec.set(sps);
      return;
    }
    if (event.kind !== 'completed' && event.kind !== 'failed') return;
    // A cancelled job ends as a BullMQ failure whose reason carries CANCELLED_REASON.
    const outcome = event.kind === 'failed' && event.reason.includes(CANCELLED_REASON) ? 'cancelled' : event.kind;
    this.finished.inc({ queue: event.type, outcome });
    const job = await Job.fromId(this.producer.queueOf(event.type), event.jobId);
    if (job?.processedOn && job.finishedOn)
      this.duration.observe({ queue: event.type, outcome }, (job.finishedOn - job.processedOn) / 1000);
    const sps = event.type === JobName.Train && outcome === 'completed' ? throughput(job?.returnvalue) : undefined;
    if (sps !== undefined) this.samplesPerSec.set(sps);
  }
}

/** samplesPerSec of a train progress report or result, when it has one. */
function throughput(value: unknown): number | undefined {
  const sps = (value as { samplesPerSec?: unknown } | null | undefined)?.samplesPerSec;
  return typeof sps === 'number' && sps > 0 ? sps : undefined;
}
