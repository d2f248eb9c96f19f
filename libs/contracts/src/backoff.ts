import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Retry pacing for every loop that talks to Redis and tries again (reconnects, polls, waits). Here,
 * free of Nest and of any client, because the worker's Nest side and @tq/paramserver both use it.
 */
export interface BackoffOptions {
  /** The first delay (before jitter). */
  baseMs?: number;
  /** No delay exceeds this (REDIS_RETRY_MAX_MS). */
  capMs: number;
  /** 0..1 source of jitter; Math.random unless a test fixes it. */
  random?: () => number;
}

/**
 * Exponential backoff with "equal jitter": try n waits between half and all of min(cap, base·2^n).
 * The floor keeps the growth (try n+1 never waits less than try n could) while the jitter spreads a
 * fleet of workers that lost Redis at the same moment, so they do not all come back in one burst.
 */
export class Backoff {
  private tries = 0;
  private readonly baseMs: number;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.baseMs = Math.max(1, Math.min(opts.baseMs ?? 100, opts.capMs));
    this.random = opts.random ?? Math.random;
  }

  /** Failed tries since the last success (reset). */
  get attempts(): number {
    return this.tries;
  }

  /** The delay before the next try; counts a failed try. */
  next(): number {
    return backoffDelay(this.tries++, { ...this.opts, baseMs: this.baseMs, random: this.random });
  }

  /** Waits the next delay; ends early (without throwing) when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    await sleep(this.next(), undefined, signal ? { signal } : {}).catch(() => undefined);
  }

  /** A try succeeded: the next failure starts from the base delay again. */
  reset(): void {
    this.tries = 0;
  }
}

/** The delay before try `attempt` (0-based): what Backoff.next gives, for callers that count tries themselves. */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const base = Math.max(1, Math.min(opts.baseMs ?? 100, opts.capMs));
  // 2^attempt overflows to Infinity for large counts, which the cap then takes.
  const ceiling = Math.min(opts.capMs, base * 2 ** Math.max(0, attempt));
  const random = opts.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Writes a repeated message once per interval, not once per try: the first occurrence of a key
 * goes out at once, repeats within `intervalMs` are only counted, and the next one written after
 * the interval says how many were left out. (A worker looping on a Redis error wrote 103,624
 * lines, 99 MB, in 12 s.)
 */
export class ThrottledLog {
  private readonly keys = new Map<string, { writtenAt: number; suppressed: number; last: string }>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Writes `line` (or counts it, when `key` was written less than intervalMs ago); true when written. */
  log(line: string, key = line): boolean {
    const t = this.now();
    const seen = this.keys.get(key);
    if (seen && t - seen.writtenAt < this.intervalMs) {
      seen.suppressed += 1;
      seen.last = line;
      return false;
    }
    const more = seen?.suppressed ? ` (and ${seen.suppressed} more like it in ${this.since(seen.writtenAt, t)})` : '';
    this.write(line + more);
    this.keys.set(key, { writtenAt: t, suppressed: 0, last: line });
    if (this.keys.size > 1000) this.keys.delete(this.keys.keys().next().value as string); // bounded: oldest key goes
    return true;
  }

  /** Writes what was counted but not yet written (e.g. at shutdown, or when the error cleared). */
  flush(key?: string): void {
    for (const [k, seen] of this.keys) {
      if (key !== undefined && k !== key) continue;
      if (seen.suppressed > 0)
        this.write(`${seen.last} (repeated ${seen.suppressed} times in ${this.since(seen.writtenAt, this.now())})`);
      this.keys.delete(k);
    }
  }

  private since(from: number, to: number): string {
    return `${((to - from) / 1000).toFixed(1)} s`;
  }
}
