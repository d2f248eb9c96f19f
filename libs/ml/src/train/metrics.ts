import type { Metrics } from '@tq/contracts';
import type { Evaluation } from './evaluate';

const METRIC_KEYS = ['accuracy', 'valLoss', 'valAccuracy', 'mae', 'rmse', 'r2', 'valMae', 'valRmse', 'valR2'] as const;

/** An epoch's history entry as the result's metrics (finite only: a metric a task lacks is absent). */
export function epochMetrics(entry: Record<string, number>): Metrics {
  const metrics: Metrics = { loss: entry.loss ?? Number.NaN };
  for (const k of METRIC_KEYS) if (entry[k] !== undefined && Number.isFinite(entry[k])) metrics[k] = entry[k];
  return metrics;
}

/** The val* entries of an evaluation: valAccuracy for a classifier, valMae / valRmse / valR2 for a regression. */
export function validationEntry(v: Evaluation): Record<string, number> {
  if (v.mae === undefined) return { valLoss: v.loss, valAccuracy: v.accuracy };
  return { valLoss: v.loss, valMae: v.mae, valRmse: v.rmse!, valR2: v.r2! };
}
