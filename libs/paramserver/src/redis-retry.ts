import { Backoff, ThrottledLog } from '@tq/contracts';

/** Default cap of the backoff between tries (REDIS_RETRY_MAX_MS, which the worker passes in its deps). */
export const DEFAULT_REDIS_RETRY_MAX_MS = 30_000;

const TRANSIENT = [
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH/,
  /Connection is closed|Stream isn't writeable|Command timed out/,
  /^(LOADING|READONLY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN)\b/,
];

/**
 * A Redis error that goes away by itself: the connection dropped or is being re-established, the
 * server is loading or failing over, a command timed out. Anything else (a script error, CROSSSLOT,
 * WRONGTYPE) is a bug or a misconfiguration, which trying again would only repeat.
 */
export function isTransientRedisError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return TRANSIENT.some((re) => re.test(err.message));
}

/**
 * Retries the Redis calls of one loop (the coordinator's watch, the aggregator's barrier, a shard's
 * wait for weights) through a Redis outage instead of failing the job at the first dropped
 * connection: exponential backoff with jitter up to `capMs`, the error logged once per minute with
 * a count, and given up (the error thrown, so BullMQ retries the job) after `giveUpMs` of failures
 * in a row. Non-transient errors are thrown at once.
 */
export class RedisRetry {
  private readonly backoff: Backoff;
  private readonly logs: ThrottledLog;
  private failingSince: number | undefined;

  constructor(
    log: (line: string) => void,
    capMs = DEFAULT_REDIS_RETRY_MAX_MS,
    private readonly giveUpMs = Math.max(60_000, 4 * capMs),
  ) {
    this.backoff = new Backoff({ baseMs: 100, capMs });
    this.logs = new ThrottledLog(log, 60_000);
  }

  async run<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (;;) {
      try {
        const value = await fn();
        if (this.failingSince !== undefined) {
          this.logs.flush();
          this.logs.log(`${what}: Redis answers again after ${Date.now() - this.failingSince} ms`, 'recovered');
          this.failingSince = undefined;
          this.backoff.reset();
        }
        return value;
      } catch (err) {
        if (!isTransientRedisError(err)) throw err;
        this.failingSince ??= Date.now();
        if (Date.now() - this.failingSince > this.giveUpMs) throw err;
        this.logs.log(`${what}: ${(err as Error).message}; trying again with backoff`, what);
        await this.backoff.wait(signal);
        signal?.throwIfAborted();
      }
    }
  }
}
