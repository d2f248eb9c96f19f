export type { TabularData } from '@tq/storage';
export * from './prng';
export * from './builtin';
export * from './csv';
export * from './upload';
export * from './resolve';
export * from './batches';
