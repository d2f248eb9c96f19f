import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { Job } from 'bullmq';
import {
  Backoff,
  CancelledError,
  isCancelledReason,
  PUBLIC_JOB_TYPES,
  ThrottledLog,
  type JobName,
  type PublicJobType,
} from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { cancelKey } from './cancellation';
import { toJobView } from './job-view';
import { RedisClientHolder } from './redis.provider';
import { writeTombstone } from './tombstones';

const isPublicJob = (name: JobName): name is PublicJobType => (PUBLIC_JOB_TYPES as readonly JobName[]).includes(name);

export interface WatchedJob {
  /** Aborts with CancelledError when a cancel is requested, or with the outer signal's reason. */
  signal: AbortSignal;
  release(): void;
}

/**
 * Turns cross-process cancel requests into AbortSignals: one timer per worker process reads the
 * cancel keys of every job it runs with a single MGET every CANCEL_POLL_MS (250 ms: a cancelled job
 * stops within about one poll plus one batch), and only while it runs any.
 */
@Injectable()
export class CancelWatcher implements OnApplicationShutdown {
  private readonly logger = new Logger('cancel');
  private readonly jobs = new Map<string, AbortController>();
  private readonly everyMs = loadConfig().CANCEL_POLL_MS;
  private timer: NodeJS.Timeout | undefined;
  /** After a failed read the next poll waits longer (doubling up to REDIS_RETRY_MAX_MS) instead of every poll. */
  private readonly backoff = new Backoff({ baseMs: this.everyMs, capMs: loadConfig().REDIS_RETRY_MAX_MS });
  private retryAt = 0;
  private readonly errors = new ThrottledLog((line) => this.logger.warn(line), 60_000);

  /** Public: the processors' fences use the same client (TypedWorkerHost). */
  constructor(readonly redis: RedisClientHolder) {}

  watch(jobId: string, outer?: AbortSignal): WatchedJob {
    const controller = new AbortController();
    const forward = () => controller.abort(outer?.reason);
    if (outer?.aborted) forward();
    outer?.addEventListener('abort', forward, { once: true });
    this.jobs.set(jobId, controller);
    this.timer ??= setInterval(() => void this.poll(), this.everyMs);
    return {
      signal: controller.signal,
      release: () => {
        outer?.removeEventListener('abort', forward);
        if (this.jobs.get(jobId) === controller) this.jobs.delete(jobId);
        if (this.jobs.size === 0) this.stop();
      },
    };
  }

  /**
   * A job that failed because it was cancelled leaves BullMQ for a tombstone (its last view), so
   * the dashboard lists only real failures as failed while GET /v1/jobs/:id still answers.
   */
  async retireCancelled(job: Job, type: JobName): Promise<void> {
    if (!job.id || !isCancelledReason(job.failedReason)) return;
    if (isPublicJob(type)) {
      const view = toJobView(job, type, 'failed');
      await writeTombstone(this.redis.client, this.redis.prefix, view, loadConfig().JOB_HISTORY_AGE_SECONDS);
    }
    await job.remove();
  }

  /** Aborts a running job's signal with `reason` (e.g. its lock was lost); no-op for jobs not running here. */
  abort(jobId: string, reason: Error): void {
    const controller = this.jobs.get(jobId);
    if (controller && !controller.signal.aborted) controller.abort(reason);
  }

  onApplicationShutdown(): void {
    this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    const ids = [...this.jobs.keys()];
    if (ids.length === 0 || Date.now() < this.retryAt) return;
    try {
      const flags = await this.redis.client.mget(ids.map((id) => cancelKey(this.redis.prefix, id)));
      flags.forEach((flag, i) => {
        const controller = flag ? this.jobs.get(ids[i] as string) : undefined;
        if (controller && !controller.signal.aborted) controller.abort(new CancelledError());
      });
      if (this.backoff.attempts > 0) this.errors.flush();
      this.backoff.reset();
    } catch (err) {
      // A Redis hiccup: a later poll asks again, after a growing pause; said once a minute, not once a poll.
      this.retryAt = Date.now() + this.backoff.next();
      this.errors.log(`cannot read cancel requests: ${(err as Error).message}`, 'poll');
    }
  }
}
