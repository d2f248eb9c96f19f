export * from './config.schema';
export * from './encryption-keys';
export * from './load-config';
export * from './log-levels';
export * from './retention';
export * from './table-limits';
export * from './worker-v8-flags';
