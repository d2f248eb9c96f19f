import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { Job } from 'bullmq';
import { Gauge, Registry } from 'prom-client';
import { ALL_QUEUES, JobName, QUEUE_OF_JOB, type PublicJobType } from '@tq/contracts';
import { JobProducer, RedisClientHolder } from '@tq/queue';
import { JobMetrics, collectProcessMetrics, outcomeOf, throughputOf } from '@tq/runtime';
import { JobEventsService, type JobEvent } from '../jobs/job-events.service';
import { registerQueueDepth } from './queue-depth.gauge';

/**
 * Prometheus metrics: job counts per queue and state (read from Redis at scrape time, so every
 * worker's work counts), job durations and training throughput (from the queue event stream).
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly logger = new Logger('metrics');
  private readonly jobs = new JobMetrics(this.registry, 'tq_', 'the workers');

  constructor(
    private readonly producer: JobProducer,
    private readonly events: JobEventsService,
    redis: RedisClientHolder,
  ) {
    const producerRef = this.producer;
    const logger = this.logger;
    new Gauge({
      name: 'tq_redis_up',
      help: '1 while the API is connected to Redis, 0 while it is not (the queue gauges are then absent)',
      registers: [this.registry],
      collect() {
        this.set(redis.ready ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tq_jobs',
      help: 'Jobs by queue and state',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      // Redis away: no counts rather than stale ones, and a scrape that still answers (process
      // metrics, tq_redis_up 0) instead of failing on one command; a hung Redis costs at most
      // REDIS_COMMAND_TIMEOUT_MS.
      async collect() {
        this.reset();
        if (!redis.ready) return;
        try {
          for (const queue of ALL_QUEUES) {
            const counts = await producerRef
              .queue(queue)
              .getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'waiting-children');
            for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
          }
        } catch (err) {
          this.reset();
          logger.warn(`tq_jobs left out: ${err instanceof Error ? err.message : String(err)}`);
        }
      },
    });
    registerQueueDepth(
      this.registry,
      (queue) => producerRef.queue(queue),
      (message) => this.logger.warn(message),
    );
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

  /** A waiting job removed by a cancel request: it never ran, so it has no duration. */
  waitingJobCancelled(type: PublicJobType): void {
    this.jobs.jobFinished(QUEUE_OF_JOB[type], 'cancelled', undefined);
  }

  private async observe(event: JobEvent): Promise<void> {
    if (event.kind === 'progress') {
      if (event.type === JobName.Train) this.jobs.trainingThroughput(throughputOf(event.data));
      return;
    }
    if (event.kind !== 'completed' && event.kind !== 'failed') return;
    const outcome = event.kind === 'failed' ? outcomeOf(event.reason) : 'completed';
    // The count must not depend on reading the job back (it may be gone already): only its duration does.
    const job = await Job.fromId(this.producer.queueOf(event.type), event.jobId).catch((err: unknown) => {
      this.logger.warn(`no duration for job ${event.jobId}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    });
    const seconds = job?.processedOn && job.finishedOn ? (job.finishedOn - job.processedOn) / 1000 : undefined;
    // Labelled by queue, as the workers label theirs (a job type and its queue may differ: profile-dataset).
    this.jobs.jobFinished(QUEUE_OF_JOB[event.type], outcome, seconds);
    if (event.type === JobName.Train && outcome === 'completed')
      this.jobs.trainingThroughput(throughputOf(job?.returnvalue));
  }
}
