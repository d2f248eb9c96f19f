/**
 * Count, mean, standard deviation, min and max of a stream of numbers, in O(1) memory. Sums are
 * taken of x - (the first value): as stable as Welford's update for data of one magnitude,
 * without its division per value (this runs for every numeric cell of a profile).
 */
export class Moments {
  n = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private shift = 0;
  private sum = 0;
  private sumSq = 0;

  add(x: number): void {
    if (this.n++ === 0) this.shift = x;
    const d = x - this.shift;
    this.sum += d;
    this.sumSq += d * d;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  get mean(): number {
    return this.n > 0 ? this.shift + this.sum / this.n : 0;
  }

  /** Population standard deviation (0 for fewer than two values). */
  get std(): number {
    if (this.n < 2) return 0;
    const m = this.sum / this.n;
    return Math.sqrt(Math.max(0, this.sumSq / this.n - m * m));
  }
}
