export * from './float16';
export * from './quantize';
export * from './compress-version';
export * from './prune';
export * from './prune-model';
export * from './figures';
export * from './check-compress';
export * from './structured';
