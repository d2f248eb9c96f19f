import type { JobRetention } from '@tq/contracts';
import type { AppConfig } from './config.schema';

/** How long finished jobs are kept, as the producer and the parameter server's child jobs apply it. */
export function jobRetention(config: Pick<AppConfig, 'JOB_HISTORY_COUNT' | 'JOB_HISTORY_AGE_SECONDS'>): JobRetention {
  return { count: config.JOB_HISTORY_COUNT, ageSeconds: config.JOB_HISTORY_AGE_SECONDS };
}
