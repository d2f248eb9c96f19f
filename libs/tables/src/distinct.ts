/** Values counted exactly before switching to the HyperLogLog estimate. */
export const EXACT_DISTINCT = 1_000;
const HLL_BITS = 12;
const REGISTERS = 1 << HLL_BITS;

/**
 * Distinct values and their counts in bounded memory: an exact count map for the first
 * EXACT_DISTINCT values (which also gives the top categories), then a HyperLogLog sketch
 * (4,096 registers, about 1.6% standard error) fed with every value. New values past the cap are
 * not counted individually (nor any number), so `top` is exact only while `exact` is true.
 */
export class DistinctCounter {
  /** Boxed counts: one map lookup per repeated value instead of a get and a set. */
  private readonly boxes = new Map<string | number, { n: number }>();
  private registers: Uint8Array | undefined;

  /** Values counted exactly (all of them while `exact`). */
  get counted(): number {
    return this.boxes.size;
  }

  get exact(): boolean {
    return this.registers === undefined;
  }

  add(key: string | number): void {
    // Past the cap, numbers are only sketched: their top values are never listed (see profile).
    if (this.registers !== undefined && typeof key === 'number') return this.sketch(key);
    const box = this.boxes.get(key);
    if (box !== undefined) box.n++;
    else if (this.registers === undefined && this.boxes.size < EXACT_DISTINCT) this.boxes.set(key, { n: 1 });
    else this.overflow();
    if (this.registers !== undefined) this.sketch(key);
  }

  /** The distinct count: exact, or the sketch's estimate. */
  size(): number {
    return this.registers === undefined
      ? this.boxes.size
      : Math.max(this.boxes.size, Math.round(estimate(this.registers)));
  }

  /** The most frequent keys, most frequent first (ties by key for a stable order). */
  top(k: number): Array<{ value: string; count: number }> {
    return [...this.boxes]
      .sort((a, b) => b[1].n - a[1].n || String(a[0]).localeCompare(String(b[0])))
      .slice(0, k)
      .map(([value, box]) => ({ value: String(value), count: box.n }));
  }

  private overflow(): void {
    if (this.registers !== undefined) return;
    this.registers = new Uint8Array(REGISTERS);
    for (const key of this.boxes.keys()) this.sketch(key);
  }

  private sketch(key: string | number): void {
    const h = typeof key === 'number' ? hashNumber(key) : hashString(key);
    const index = h >>> (32 - HLL_BITS);
    const rank = Math.clz32((h << HLL_BITS) | (1 << (HLL_BITS - 1))) + 1;
    if (rank > this.registers![index]!) this.registers![index] = rank;
  }
}

function estimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (const r of registers) {
    sum += 2 ** -r;
    if (r === 0) zeros++;
  }
  const m = registers.length;
  const raw = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
  // Linear counting is the better estimate while many registers are still empty.
  return raw <= 2.5 * m && zeros > 0 ? m * Math.log(m / zeros) : raw;
}

/** 32-bit FNV-1a with a final avalanche (murmur3 fmix32). */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix(h);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
function hashNumber(x: number): number {
  f64[0] = x;
  return fmix(Math.imul(u32[0]! ^ 0x9e3779b9, 0x85ebca6b) ^ u32[1]!);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
