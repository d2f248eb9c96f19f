import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's process and Node.js metrics, minus three gauges it names "..._total", a suffix
 * Prometheus reserves for counters (`promtool check metrics` rejects them). The per-type gauges
 * without the suffix (nodejs_active_handles{type=...} ...) carry the same counts.
 */
const TOTAL_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of TOTAL_GAUGES) registry.removeSingleMetric(prefix + name);
}
