import { Counter, Histogram, type Registry } from 'prom-client';
import type { BatcherObserver } from './dynamic-batcher';

const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A replica's serving series, per model version (labels model, version; not tenant, which would
 * multiply the series by the tenants): requests by status, batch sizes in rows, queue wait,
 * inference time per engine call, rejections by reason (queue_full, timeout).
 */
export class ServeMetrics {
  readonly requests: Counter<'model' | 'version' | 'code'>;
  private readonly batchRows: Histogram<'model' | 'version'>;
  private readonly queueWait: Histogram<'model' | 'version'>;
  private readonly inference: Histogram<'model' | 'version'>;
  private readonly rejections: Counter<'model' | 'version' | 'reason'>;

  constructor(registry: Registry, prefix = 'tq_serve_') {
    const registers = [registry];
    const labelNames = ['model', 'version'] as const;
    this.requests = new Counter({
      name: `${prefix}requests_total`,
      help: 'Predict requests answered by this replica, by model version and HTTP status',
      labelNames: [...labelNames, 'code'],
      registers,
    });
    this.batchRows = new Histogram({
      name: `${prefix}batch_size`,
      help: 'Rows per engine call (dynamic batching): above 1 when concurrent requests coalesced',
      labelNames,
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.queueWait = new Histogram({
      name: `${prefix}queue_wait_seconds`,
      help: 'Time a predict waited in its model version queue before its batch ran',
      labelNames,
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.inference = new Histogram({
      name: `${prefix}inference_seconds`,
      help: 'Engine call of one batch, as the event loop sees it (the wait for its turn included)',
      labelNames,
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.rejections = new Counter({
      name: `${prefix}rejections_total`,
      help: 'Predicts refused (queue_full: 429) or past SERVE_TIMEOUT_MS (timeout: 504)',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
  }

  /** The batcher observer of one model version. */
  observerFor(name: string, version: number): BatcherObserver {
    const labels = { model: name, version: String(version) };
    return {
      batch: (rows, _requests, ms) => {
        this.batchRows.observe(labels, rows);
        this.inference.observe(labels, ms / 1000);
      },
      queueWait: (ms) => this.queueWait.observe(labels, ms / 1000),
      rejected: (reason) => this.rejections.inc({ ...labels, reason }),
    };
  }
}
