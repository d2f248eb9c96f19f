import type { Matrix } from '@tq/tables';

/**
 * Two small closed-form models used to show the preprocessing makes raw tables learnable without
 * any hand scaling: nearest class centroid (classification) and ridge least squares (regression).
 */
export function nearestCentroidAccuracy(train: Matrix, test: Matrix, width: number, classes: number): number {
  const sums = new Float64Array(classes * width);
  const counts = new Float64Array(classes);
  for (let i = 0; i < train.rows; i++) {
    const c = train.targets[i]!;
    counts[c]!++;
    for (let j = 0; j < width; j++) sums[c * width + j]! += train.features[i * width + j]!;
  }
  let correct = 0;
  for (let i = 0; i < test.rows; i++) {
    let best = -1;
    let bestD = Infinity;
    for (let c = 0; c < classes; c++) {
      let d = 0;
      for (let j = 0; j < width; j++) d += (test.features[i * width + j]! - sums[c * width + j]! / counts[c]!) ** 2;
      if (d < bestD) [best, bestD] = [c, d];
    }
    if (best === test.targets[i]) correct++;
  }
  return correct / test.rows;
}

/** Weights (last one the bias) of ridge regression on standardized targets. */
export function ridge(train: Matrix, width: number, lambda = 1e-3): Float64Array {
  const n = width + 1;
  const a = new Float64Array(n * n);
  const b = new Float64Array(n);
  const x = new Float64Array(n);
  for (let i = 0; i < train.rows; i++) {
    for (let j = 0; j < width; j++) x[j] = train.features[i * width + j]!;
    x[width] = 1;
    for (let r = 0; r < n; r++) {
      b[r]! += x[r]! * train.targets[i]!;
      for (let c = 0; c < n; c++) a[r * n + c]! += x[r]! * x[c]!;
    }
  }
  for (let r = 0; r < n; r++) a[r * n + r]! += lambda;
  return solve(a, b, n);
}

export function predict(w: Float64Array, m: Matrix, width: number): Float64Array {
  return Float64Array.from({ length: m.rows }, (_, i) => {
    let s = w[width]!;
    for (let j = 0; j < width; j++) s += w[j]! * m.features[i * width + j]!;
    return s;
  });
}

export function r2(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const mean = Array.from(truth).reduce((s, v) => s + v, 0) / truth.length;
  let res = 0;
  let tot = 0;
  for (let i = 0; i < truth.length; i++) {
    res += (truth[i]! - predicted[i]!) ** 2;
    tot += (truth[i]! - mean) ** 2;
  }
  return 1 - res / tot;
}

/** Gaussian elimination with partial pivoting; `a` is n × n row-major (overwritten). */
function solve(a: Float64Array, b: Float64Array, n: number): Float64Array {
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let r = k + 1; r < n; r++) if (Math.abs(a[r * n + k]!) > Math.abs(a[p * n + k]!)) p = r;
    for (let c = 0; c < n; c++) [a[k * n + c], a[p * n + c]] = [a[p * n + c]!, a[k * n + c]!];
    [b[k], b[p]] = [b[p]!, b[k]!];
    for (let r = k + 1; r < n; r++) {
      const f = a[r * n + k]! / a[k * n + k]!;
      for (let c = k; c < n; c++) a[r * n + c]! -= f * a[k * n + c]!;
      b[r]! -= f * b[k]!;
    }
  }
  const w = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let c = r + 1; c < n; c++) s -= a[r * n + c]! * w[c]!;
    w[r] = s / a[r * n + r]!;
  }
  return w;
}
