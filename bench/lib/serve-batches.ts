/**
 * What a serve replica's batches were over a phase, read from its /metrics (no key needed there):
 * rows a batch and the engine call's time a batch, over every model version. The engine call is
 * timed as the event loop sees it (tq_serve_inference_seconds: onnxruntime-node runs a session in
 * a setImmediate), so it includes the wait for the loop's turn: a loop busy parsing requests and a
 * slower onnxruntime both lengthen it. A 32-row batch of the MLP was seen at 0.23 ms in some runs
 * and 0.65 ms in others.
 */
export interface BatchTotals {
  batches: number;
  rows: number;
  inferenceSeconds: number;
}

/** The replica's totals now (tq_serve_batch_size and tq_serve_inference_seconds, summed over labels). */
export async function batchTotals(replicaUrl: string): Promise<BatchTotals> {
  const res = await fetch(`${replicaUrl}/metrics`);
  if (!res.ok) throw new Error(`${replicaUrl}/metrics answered ${res.status}`);
  const text = await res.text();
  const sum = (series: string) =>
    text
      .split('\n')
      .filter((line) => line.startsWith(`${series}{`) || line.startsWith(`${series} `))
      .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    batches: sum('tq_serve_batch_size_count'),
    rows: sum('tq_serve_batch_size_sum'),
    inferenceSeconds: sum('tq_serve_inference_seconds_sum'),
  };
}

/** "31.6 rows × 0.45 ms": rows a batch and the engine call's ms a batch between two readings. */
export function batchesBetween(before: BatchTotals, after: BatchTotals): string {
  const batches = after.batches - before.batches;
  if (batches <= 0) return 'no batch';
  const rows = (after.rows - before.rows) / batches;
  const ms = ((after.inferenceSeconds - before.inferenceSeconds) * 1000) / batches;
  return `${rows.toFixed(1)} rows × ${ms.toFixed(2)} ms`;
}
