import type { LogLevel } from '@nestjs/common';
import type { AppConfig } from './config.schema';

const ORDER = ['error', 'warn', 'log', 'debug', 'verbose'] as const;

/** LOG_LEVEL names the most verbose level shown; Nest wants the whole list up to it. */
export function logLevels(config: Pick<AppConfig, 'LOG_LEVEL'>): LogLevel[] {
  return ORDER.slice(0, ORDER.indexOf(config.LOG_LEVEL) + 1);
}
