export { shapeOf, type DataShape, type TabularData } from './tabular-data';
export * from './prng';
export * from './builtin';
export * from './batches';
