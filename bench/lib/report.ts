/**
 * Printing for bench scripts: a figure measured through the system next to its baseline measured in
 * the same run, and their ratio. Hand-written (a few lines of padding) rather than a table package:
 * the output is plain text in a CI log, and every bench script shares the same reading of "ratio".
 */

export interface Comparison {
  /** What was measured, e.g. "train samples/s (batch loop)". */
  figure: string;
  unit: string;
  /** The figure through the thing under test. */
  value: number;
  /** The same figure for the baseline, measured in the same run. */
  baseline: number;
  /** What the baseline is, e.g. "bare model.fit". */
  baselineName: string;
  /** true for throughputs (samples/s, jobs/s), false for latencies and times. */
  higherIsBetter: boolean;
}

/** value / baseline; NaN when the baseline is zero or missing. */
export function ratio(value: number, baseline: number): number {
  return baseline > 0 && Number.isFinite(baseline) ? value / baseline : Number.NaN;
}

/** "1.32x slower" / "1.05x faster" / "same": how the measured figure compares, whichever way is better. */
export function verdict(c: Pick<Comparison, 'value' | 'baseline' | 'higherIsBetter'>): string {
  const r = ratio(c.value, c.baseline);
  if (!Number.isFinite(r) || r <= 0) return 'n/a';
  const speedup = c.higherIsBetter ? r : 1 / r;
  if (Math.abs(speedup - 1) < 0.005) return 'same';
  return speedup > 1 ? `${speedup.toFixed(2)}x faster` : `${(1 / speedup).toFixed(2)}x slower`;
}

/** Three significant digits, no exponent for everyday magnitudes. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const abs = Math.abs(n);
  if (abs >= 1000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  if (abs >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** A left-aligned text table; numeric-looking cells are right-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = (s: string) => /^[-+]?[\d,.]+(e[-+]?\d+)?$/i.test(s);
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric(c) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join(' | ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

/** Prints comparisons as one table: figure, unit, measured, baseline, its name, ratio, verdict. */
export function printComparisons(title: string, comparisons: readonly Comparison[]): void {
  const rows = comparisons.map((c) => [
    c.figure,
    c.unit,
    fmt(c.value),
    fmt(c.baseline),
    c.baselineName,
    fmt(ratio(c.value, c.baseline)),
    verdict(c),
  ]);
  console.log(`\n${title}\n`);
  console.log(
    formatTable(['figure', 'unit', 'measured', 'baseline', 'baseline is', 'ratio', 'measured vs baseline'], rows),
  );
  console.log('\nratio = measured / baseline, both measured in this run.\n');
}

/** Key/value context lines (backend, machine, counts) printed above a result table. */
export function printContext(entries: Record<string, string | number>): void {
  const width = Math.max(...Object.keys(entries).map((k) => k.length));
  for (const [k, v] of Object.entries(entries)) console.log(`  ${k.padEnd(width)}  ${v}`);
}
