import { DeadlineError, OverloadedError } from '@tq/contracts';

/** One engine call over rows × featureCount (row-major); scores are rows × outputSize. */
export type BatchRunner = (features: Float32Array, rows: number) => Promise<BatchOutput>;

export interface BatchOutput {
  scores: Float32Array;
  outputSize: number;
  /** Which runtime answered (passed through to every request of the batch). */
  engine?: 'onnxruntime' | 'tfjs';
}

/** What the batcher reports, for /metrics (all optional: tests pass none). */
export interface BatcherObserver {
  /** A batch ran: its rows and requests, and the engine's time in ms. */
  batch?(rows: number, requests: number, inferenceMs: number): void;
  /** A request started running after waiting this many ms in the queue. */
  queueWait?(ms: number): void;
  /** A request was refused (queue full) or ran past its deadline. */
  rejected?(reason: 'queue_full' | 'timeout'): void;
}

export interface DynamicBatcherOptions {
  featureCount: number;
  /** Rows per engine call: waiting requests are taken while they fit (a larger request runs alone). */
  maxBatchSize: number;
  /** How long the first waiting request waits for others before a partial batch runs. */
  maxDelayMs: number;
  /** Rows waiting (not yet running) at most; beyond it a request is refused with a 429. */
  maxQueueRows: number;
  /** A request not answered within this many ms is answered 504 and leaves the queue. */
  timeoutMs: number;
  /** Retry-After of a refused request, in seconds. */
  retryAfterSeconds?: number;
  /** Engine calls in flight at once (1: the next batch fills while one runs, which is what batches). */
  maxConcurrentBatches?: number;
  observer?: BatcherObserver;
  /** Names the model version in errors ("digits v3"). */
  label?: string;
}

export interface BatchedResult extends BatchOutput {
  /** Rows of the engine call this request ran in (its own included). */
  batchRows: number;
}

interface Pending {
  features: Float32Array;
  rows: number;
  enqueuedAt: number;
  settled: boolean;
  timer: NodeJS.Timeout;
  resolve(out: BatchedResult): void;
  reject(err: Error): void;
}

/**
 * Dynamic batching for one model version (Triton's scheduler, reduced): concurrent requests wait
 * in a bounded queue and run together as one engine call of up to maxBatchSize rows, at the latest
 * maxDelayMs after the oldest one arrived; each request gets back exactly its own rows' scores, in
 * its order. A batch that fails is run again one request at a time, so a request whose rows the
 * engine refuses fails alone.
 */
export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private queuedRows = 0;
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly run: BatchRunner,
    private readonly opts: DynamicBatcherOptions,
  ) {
    for (const key of ['featureCount', 'maxBatchSize', 'maxQueueRows', 'timeoutMs'] as const)
      if (!Number.isInteger(opts[key]) || opts[key] < 1)
        throw new RangeError(`${key} must be a positive integer, got ${opts[key]}`);
    if (!(opts.maxDelayMs >= 0)) throw new RangeError(`maxDelayMs must be ≥ 0, got ${opts.maxDelayMs}`);
  }

  /** Rows waiting to run (the queue bound counts these). */
  get waitingRows(): number {
    return this.queuedRows;
  }

  /** Requests waiting to run. */
  get waitingRequests(): number {
    return this.queue.length;
  }

  /** Nothing waits and no batch runs: closing it now fails no request. */
  get idle(): boolean {
    return this.queue.length === 0 && this.running === 0;
  }

  /**
   * Queues `rows` rows (rows × featureCount values) and resolves with their scores once their batch
   * ran. Rejects with an OverloadedError (429) when the queue holds maxQueueRows already, and a
   * DeadlineError (504) after timeoutMs.
   */
  submit(features: Float32Array, rows: number): Promise<BatchedResult> {
    if (this.closed) return Promise.reject(new Error(`the batcher of ${this.name} is closed`));
    if (!Number.isInteger(rows) || rows < 1) return Promise.reject(new RangeError(`rows must be ≥ 1, got ${rows}`));
    if (features.length !== rows * this.opts.featureCount)
      return Promise.reject(
        new RangeError(`${features.length} values for ${rows} rows of ${this.opts.featureCount} features`),
      );
    // An empty queue admits any request, so one larger than the bound is not refused for ever.
    if (this.queue.length > 0 && this.queuedRows + rows > this.opts.maxQueueRows) {
      this.opts.observer?.rejected?.('queue_full');
      return Promise.reject(
        new OverloadedError(
          '(queue)',
          `${this.name} has ${this.queuedRows} rows waiting, at most ${this.opts.maxQueueRows} (SERVE_MAX_QUEUE): try again later`,
          this.opts.retryAfterSeconds ?? 1,
        ),
      );
    }
    return new Promise<BatchedResult>((resolve, reject) => {
      const p: Pending = {
        features,
        rows,
        enqueuedAt: performance.now(),
        settled: false,
        timer: setTimeout(() => this.expire(p), this.opts.timeoutMs),
        resolve: (out) => {
          if (p.settled) return;
          p.settled = true;
          clearTimeout(p.timer);
          resolve(out);
        },
        reject: (err) => {
          if (p.settled) return;
          p.settled = true;
          clearTimeout(p.timer);
          reject(err);
        },
      };
      this.queue.push(p);
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Refuses new requests and fails the waiting ones; batches already running finish. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const p of this.queue.splice(0)) p.reject(new Error(`the batcher of ${this.name} is closed`));
    this.queuedRows = 0;
  }

  private get name(): string {
    return this.opts.label ?? 'this model';
  }

  /** Runs a batch now when one is full (or the oldest waited maxDelayMs), else sets the timer for it. */
  private schedule(): void {
    if (this.queue.length === 0 || this.running >= (this.opts.maxConcurrentBatches ?? 1)) return;
    const oldest = this.queue[0]!;
    const due = oldest.enqueuedAt + this.opts.maxDelayMs - performance.now();
    if (this.queuedRows >= this.opts.maxBatchSize || due <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      void this.dispatch();
      return;
    }
    if (!this.timer)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, due);
  }

  private async dispatch(): Promise<void> {
    const batch: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (batch.length > 0 && rows + next.rows > this.opts.maxBatchSize) break;
      this.queue.shift();
      this.queuedRows -= next.rows;
      batch.push(next);
      rows += next.rows;
    }
    const now = performance.now();
    for (const p of batch) this.opts.observer?.queueWait?.(now - p.enqueuedAt);
    this.running++;
    try {
      await this.runBatch(batch, rows);
    } finally {
      this.running--;
      this.schedule();
    }
  }

  private async runBatch(batch: Pending[], rows: number): Promise<void> {
    const f = this.opts.featureCount;
    const features = batch.length === 1 ? batch[0]!.features : new Float32Array(rows * f);
    if (batch.length > 1) {
      let at = 0;
      for (const p of batch) {
        features.set(p.features, at * f);
        at += p.rows;
      }
    }
    const started = performance.now();
    let out: BatchOutput;
    try {
      out = await this.run(features, rows);
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err instanceof Error ? err : new Error(String(err)));
      // Which request's rows broke it is unknown: each runs alone, so only that one fails.
      else for (const p of batch) await this.runBatch([p], p.rows);
      return;
    }
    this.opts.observer?.batch?.(rows, batch.length, performance.now() - started);
    if (out.scores.length !== rows * out.outputSize) {
      const err = new Error(`${this.name}: ${out.scores.length} scores for ${rows} rows of ${out.outputSize}`);
      for (const p of batch) p.reject(err);
      return;
    }
    let at = 0;
    for (const p of batch) {
      // A copy, not a view: one request's answer never holds another's rows.
      const scores = out.scores.slice(at * out.outputSize, (at + p.rows) * out.outputSize);
      at += p.rows;
      p.resolve({ scores, outputSize: out.outputSize, batchRows: rows, ...(out.engine ? { engine: out.engine } : {}) });
    }
  }

  /** The deadline passed: out of the queue when it had not started (its rows free the bound), 504 either way. */
  private expire(p: Pending): void {
    if (p.settled) return;
    const i = this.queue.indexOf(p);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.queuedRows -= p.rows;
    }
    this.opts.observer?.rejected?.('timeout');
    p.reject(new DeadlineError(`${this.name}: no answer within ${this.opts.timeoutMs} ms (SERVE_TIMEOUT_MS)`));
  }
}
