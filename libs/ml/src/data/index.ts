export type { TabularData } from './tabular-data';
export * from './prng';
export * from './builtin';
export * from './resolve';
export * from './batches';
