import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isCancelledReason } from '@tq/contracts';

export type JobOutcome = 'completed' | 'failed' | 'cancelled';

/** A finished job's outcome as the API reports it: a cancelled job ends as a failure carrying CANCELLED_REASON. */
export function outcomeOf(failedReason: string | undefined): JobOutcome {
  return isCancelledReason(failedReason) ? 'cancelled' : 'failed';
}

/** samplesPerSec of a train progress report or result, when it has one. */
export function throughputOf(value: unknown): number | undefined {
  const sps = (value as { samplesPerSec?: unknown } | null | undefined)?.samplesPerSec;
  return typeof sps === 'number' && sps > 0 ? sps : undefined;
}

/**
 * The job series both scrape targets serve: finished jobs and their durations by queue and
 * outcome, and the latest training throughput (one series, kept after the job ends so a scrape
 * always finds a sample). `prefix` tells them apart: "tq_" at the API (every worker's jobs, from
 * the queue events), "tq_worker_" in a worker (that process's own).
 */
export class JobMetrics {
  private readonly finished: Counter;
  private readonly duration: Histogram;
  private readonly samplesPerSec: Gauge;

  constructor(registry: Registry, prefix: string, scope: string) {
    const labelNames = ['queue', 'outcome'];
    this.finished = new Counter({
      name: `${prefix}jobs_finished_total`,
      help: `Jobs ${scope} finished, by queue and outcome`,
      labelNames,
      registers: [registry],
    });
    this.duration = new Histogram({
      name: `${prefix}job_duration_seconds`,
      help: `Processing time of the jobs ${scope} finished`,
      labelNames,
      registers: [registry],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
    });
    this.samplesPerSec = new Gauge({
      name: `${prefix}training_samples_per_second`,
      help: `Latest training throughput ${scope} reported`,
      registers: [registry],
    });
  }

  jobFinished(queue: string, outcome: JobOutcome, seconds: number | undefined): void {
    this.finished.inc({ queue, outcome });
    if (seconds !== undefined) this.duration.observe({ queue, outcome }, seconds);
  }

  trainingThroughput(samplesPerSec: number | undefined): void {
    if (samplesPerSec !== undefined) this.samplesPerSec.set(samplesPerSec);
  }
}
