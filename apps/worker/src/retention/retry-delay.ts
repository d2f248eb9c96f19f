/**
 * The wait before a loop's next round: its interval while all is well; after `failures` failed
 * rounds in a row, the interval doubled that many times, capped at `capMs` (REDIS_RETRY_MAX_MS),
 * though never shorter than the interval itself.
 */
export function retryDelay(intervalMs: number, failures: number, capMs: number): number {
  if (failures <= 0) return intervalMs;
  return Math.max(intervalMs, Math.min(intervalMs * 2 ** Math.min(failures, 30), capMs));
}

/** Logs the first of a run of repeated errors, then at most one line per `everyMs` with how many it held back. */
export class ThrottledLog {
  private last = 0;
  private held = 0;

  constructor(
    private readonly write: (line: string) => void,
    private readonly everyMs = 60_000,
  ) {}

  error(line: string, now = Date.now()): void {
    if (now - this.last < this.everyMs) {
      this.held++;
      return;
    }
    this.write(this.held ? `${line} (and ${this.held} more like it since the last report)` : line);
    this.last = now;
    this.held = 0;
  }

  /** A round went well: the next error is news again. */
  reset(): void {
    this.last = 0;
    this.held = 0;
  }
}
