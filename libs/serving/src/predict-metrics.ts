import { Counter, Histogram, type Registry } from 'prom-client';
import type { Served } from '@tq/jobs';

/** Labels of one predict: the version that served it, and the alias ("" when named by number). */
type PredictLabels = 'tenant' | 'model' | 'version' | 'alias' | 'canary';

/**
 * Online predicts per served version and alias: requests by outcome, and latency. A canary's share
 * is `sum(tq_predict_requests_total{canary="true"}) / sum(tq_predict_requests_total)` per alias,
 * and its errors and latency sit beside the main version's under the same alias. The API counts
 * the predicts it takes (forwarded or not), a serve replica the ones clients send it directly:
 * each predict once, under the same names in both.
 */
export class PredictMetrics {
  private readonly requests: Counter<PredictLabels | 'outcome'>;
  private readonly seconds: Histogram<PredictLabels>;

  constructor(registry: Registry) {
    const labelNames = ['tenant', 'model', 'version', 'alias', 'canary'] as const;
    this.requests = new Counter({
      name: 'tq_predict_requests_total',
      help: 'Online predicts by served version, alias, canary draw and outcome (ok, client_error, error)',
      labelNames: [...labelNames, 'outcome'],
      registers: [registry],
    });
    this.seconds = new Histogram({
      name: 'tq_predict_duration_seconds',
      help: 'Online predict latency by served version and alias (metadata, features, inference, answers)',
      labelNames: [...labelNames],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    });
  }

  /** Times `run` as a predict of `served` and counts its outcome; rethrows its error. */
  async observe<T>(tenant: string, model: string, served: Served, run: () => Promise<T>): Promise<T> {
    const labels = {
      tenant,
      model,
      version: String(served.version),
      alias: served.alias ?? '',
      canary: String(served.canary),
    };
    const end = this.seconds.startTimer(labels);
    try {
      const out = await run();
      this.requests.inc({ ...labels, outcome: 'ok' });
      return out;
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      const client = typeof status === 'number' && status >= 400 && status < 500;
      this.requests.inc({ ...labels, outcome: client ? 'client_error' : 'error' });
      throw err;
    } finally {
      end();
    }
  }
}
