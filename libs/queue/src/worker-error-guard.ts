import { setTimeout as sleep } from 'node:timers/promises';
import type { Worker } from 'bullmq';
import { Backoff, ThrottledLog } from '@tq/contracts';
import { loadConfig } from '@tq/config';

/**
 * What a BullMQ worker does with its own errors (fetching the next job, renewing locks, moving a
 * finished job). BullMQ 6.7 retries a lost connection after `runRetryDelay`, but any other error
 * of its fetch loop (CROSSSLOT against a cluster node, a script error) is emitted and the fetch is
 * tried again at once, and with no 'error' listener each one is printed with its stack: 103,624
 * errors, 99 MB of log in 12 s. Here each error is logged once per interval (with a count of the
 * repeats), and while errors keep coming the worker stops fetching for a growing delay (exponential
 * backoff with jitter, capped at REDIS_RETRY_MAX_MS); jobs it runs go on meanwhile.
 */
export class WorkerErrorGuard {
  private readonly backoff: Backoff;
  private readonly log: ThrottledLog;
  private lastErrorAt = 0;
  private lastDelay = 0;
  private holding = false;

  constructor(
    private readonly worker: Worker,
    logger: { warn(message: string): void },
    capMs = loadConfig().REDIS_RETRY_MAX_MS,
    logEveryMs = 60_000,
  ) {
    this.backoff = new Backoff({ baseMs: 100, capMs });
    this.log = new ThrottledLog((line) => logger.warn(line), logEveryMs);
  }

  attach(): this {
    this.worker.on('error', (err: Error) => this.onError(err));
    return this;
  }

  /** Errors counted so far in the current run of them (0 once they stopped). */
  get streak(): number {
    return this.backoff.attempts;
  }

  private onError(err: Error): void {
    const now = Date.now();
    // Quiet for twice the last delay: the trouble passed, so a new error starts from the base delay.
    if (now - this.lastErrorAt > Math.max(1000, 2 * this.lastDelay)) {
      this.backoff.reset();
      this.log.flush();
    }
    this.lastErrorAt = now;
    // Digits stripped from the key: the same error about another job or slot counts as a repeat.
    this.log.log(`queue ${this.worker.name}: ${err.message}`, err.message.replace(/\d+/g, '#'));
    // A job's own trouble (a lock it could not renew, a lock missing when it finished) is not a
    // loop: BullMQ tries each once. Pausing for it would also pause the stalled checker (BullMQ 6.7
    // stops it with fetching), delaying the takeover of dead workers' jobs.
    if (this.holding || this.worker.closing || isJobError(err)) return;
    this.holding = true;
    this.lastDelay = this.backoff.next();
    void this.holdBack(this.lastDelay);
  }

  private async holdBack(delayMs: number): Promise<void> {
    try {
      // doNotWaitActive: only fetching pauses; running jobs go on (and keep their locks renewed).
      await this.worker.pause(true);
      await sleep(delayMs);
      if (!this.worker.closing) await this.worker.resume();
    } catch {
      // pause/resume emit their own errors; the next one comes back here.
    } finally {
      this.holding = false;
    }
  }
}

/** Errors about one job (its lock), which BullMQ raises once per job: no fetch loop behind them. */
function isJobError(err: Error): boolean {
  return /^could not renew lock|^Missing lock for job|^Lock mismatch for job/.test(err.message);
}
