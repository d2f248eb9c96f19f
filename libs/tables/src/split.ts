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
export function splitRows(targets: Float32Array | Float64Array, opts: { fraction: number; seed: number; stratify: boolean }): Uint8Array {
  const roles = new Uint8Array(targets.length).fill(SKIP);
  const groups = new Map<number, number[]>();
  targets.forEach((t, i) => {
    if (Number.isNaN(t)) return;
    const key = opts.stratify ? t : 0;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(i);
  });
  const rand = mulberry32(opts.seed);
  for (const rows of groups.values()) {
    shuffle(rows, rand);
    const cut = Math.min(rows.length - 1, Math.round(rows.length * opts.fraction));
    rows.forEach((r, k) => (roles[r] = k < cut ? VALIDATION : TRAIN));
  }
  return roles;
}

function shuffle(a: number[], rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
