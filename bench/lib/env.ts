/**
 * Bench sizes come from BENCH_* variables; one parser so every script reads them the same way.
 * The variable if it is a positive integer, else `fallback` (a typo must not make a 0-job run).
 */
export function envInt(value: string | undefined, fallback: number): number {
  return value && Number.isInteger(Number(value)) && Number(value) > 0 ? Number(value) : fallback;
}
