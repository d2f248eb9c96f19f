/** Count, mean, variance (Welford), min and max of a stream of numbers, in O(1) memory. */
export class Moments {
  n = 0;
  mean = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;
  private m2 = 0;

  add(x: number): void {
    this.n++;
    const d = x - this.mean;
    this.mean += d / this.n;
    this.m2 += d * (x - this.mean);
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
  }

  /** Population standard deviation (0 for fewer than two values). */
  get std(): number {
    return this.n > 1 ? Math.sqrt(this.m2 / this.n) : 0;
  }
}
