export * from './gradients';
export * from './errors';
export * from './evaluate';
export * from './checkpoint';
export * from './train-loop';
