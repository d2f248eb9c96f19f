import type { Completions } from './completions';

/**
 * The two load shapes of the system bench, shared by the system and its bare baseline so both sides
 * run the very same loop (same warm-up, same clock points) and only the submit function differs.
 */

/** Unmeasured submissions before each measured loop (connections, JIT, Redis scripts warm up). */
export const WARMUP = 10;

/** `count` sequential submit → complete round trips after WARMUP unmeasured ones; ms to completion and ms for the submit call alone. */
export async function latencies(
  count: number,
  submit: () => Promise<string>,
  done: Completions,
): Promise<{ total: number[]; submit: number[] }> {
  const out = { total: [] as number[], submit: [] as number[] };
  for (let i = 0; i < WARMUP + count; i++) {
    const t0 = performance.now();
    const id = await submit();
    const submitted = performance.now();
    const t1 = await done.wait(id, 60_000);
    if (i >= WARMUP) {
      out.total.push(t1 - t0);
      out.submit.push(submitted - t0);
    }
  }
  return out;
}

/** `total` submissions from `concurrency` clients at once, after WARMUP unmeasured ones; submissions/s and this process's CPU ms per submission. */
export async function throughput(
  total: number,
  concurrency: number,
  submit: () => Promise<unknown>,
): Promise<{ rate: number; clientCpuMs: number }> {
  for (let i = 0; i < WARMUP; i++) await submit();
  let next = 0;
  const [t0, cpu0] = [performance.now(), process.cpuUsage()];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) await submit();
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { rate: total / ((performance.now() - t0) / 1000), clientCpuMs: (cpu.user + cpu.system) / 1000 / total };
}
