import { mulberry32 } from '@tq/ml';

/** Row roles in a split. */
export const TRAIN = 0;
export const VALIDATION = 1;
/** A row without a label: in neither split. */
export const SKIP = 2;

/**
 * Assigns each row to training or validation. `targets` are class indices (classification: each
 * class is split in the same proportion, keeping at least one training row per class) or
 * standardized values (regression: a plain shuffle); NaN marks a row without a label (SKIP).
 * Seeded, so every worker and every retry derives the same split.
 */
export function splitRows(
  targets: Float32Array | Float64Array,
  opts: { fraction: number; seed: number; stratify: boolean },
): Uint8Array {
  const roles = new Uint8Array(targets.length).fill(SKIP);
  const key = (t: number) => (opts.stratify ? t : 0);
  // Row indices grouped by class in typed arrays (two passes: sizes, then fill), not JS arrays.
  const sizes = new Map<number, number>();
  for (const t of targets) if (!Number.isNaN(t)) sizes.set(key(t), (sizes.get(key(t)) ?? 0) + 1);
  const groups = new Map([...sizes].map(([k, n]) => [k, { rows: new Uint32Array(n), filled: 0 }]));
  targets.forEach((t, i) => {
    if (Number.isNaN(t)) return;
    const g = groups.get(key(t))!;
    g.rows[g.filled++] = i;
  });
  const rand = mulberry32(opts.seed);
  for (const [k] of [...groups].sort((a, b) => a[0] - b[0])) {
    const rows = groups.get(k)!.rows;
    shuffle(rows, rand);
    const cut = Math.min(rows.length - 1, Math.round(rows.length * opts.fraction));
    rows.forEach((r, i) => (roles[r] = i < cut ? VALIDATION : TRAIN));
  }
  return roles;
}

function shuffle(a: Uint32Array, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}
