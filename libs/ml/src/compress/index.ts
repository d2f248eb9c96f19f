export * from './float16';
export * from './quantize';
export * from './compress-version';
