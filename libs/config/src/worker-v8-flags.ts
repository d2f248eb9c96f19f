import type { AppConfig } from './config.schema';

/**
 * The V8 flags a worker sets at start (v8.setFlagsFromString, before its first job), from its
 * configuration: the heap's growing factor (WORKER_HEAP_GROWING_PERCENT) and allocation-site
 * pretenuring (WORKER_V8_PRETENURING). V8 reads both when it collects, so they apply from the next
 * collection on. bench/ingest's child processes set the same, so it measures tables as a worker
 * reads them.
 */
export function workerV8Flags(
  config: Pick<AppConfig, 'WORKER_HEAP_GROWING_PERCENT' | 'WORKER_V8_PRETENURING'>,
): string[] {
  const flags: string[] = [];
  if (config.WORKER_HEAP_GROWING_PERCENT > 0)
    flags.push(`--heap-growing-percent=${config.WORKER_HEAP_GROWING_PERCENT}`);
  if (config.WORKER_V8_PRETENURING === 'off') flags.push('--no-allocation-site-pretenuring');
  return flags;
}
