import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { CANCELLED_REASON, type QueueName } from '@tq/contracts';
import { collectProcessMetrics } from '@tq/runtime';

export type Outcome = 'completed' | 'failed' | 'cancelled';

/** A job's outcome as the API reports it: a cancelled job ends as a failure carrying CANCELLED_REASON. */
export function outcomeOf(failedReason: string | undefined): Outcome {
  return failedReason?.includes(CANCELLED_REASON) ? 'cancelled' : 'failed';
}

/**
 * What one worker process did, for its own /metrics: the API's tq_job_* series count every
 * worker's jobs from the queue events; these (tq_worker_*) are per process, told apart by the
 * scrape target, and add the process's CPU, memory and event-loop metrics.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly finished = new Counter({
    name: 'tq_worker_jobs_finished_total',
    help: 'Jobs this worker finished, by queue and outcome',
    labelNames: ['queue', 'outcome'],
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'tq_worker_job_duration_seconds',
    help: 'Processing time of the jobs this worker finished',
    labelNames: ['queue', 'outcome'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    registers: [this.registry],
  });
  private readonly samplesPerSec = new Gauge({
    name: 'tq_worker_training_samples_per_second',
    help: 'Latest training throughput this worker reported',
    registers: [this.registry],
  });

  constructor() {
    collectProcessMetrics(this.registry, 'tq_worker_');
  }

  jobFinished(queue: QueueName, outcome: Outcome, seconds: number | undefined): void {
    this.finished.inc({ queue, outcome });
    if (seconds !== undefined) this.duration.observe({ queue, outcome }, seconds);
  }

  trainingThroughput(samplesPerSec: number): void {
    this.samplesPerSec.set(samplesPerSec);
  }
}
