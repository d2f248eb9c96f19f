export * from './gradients';
export * from './errors';
export * from './evaluate';
export * from './checkpoint';
export * from './train-loop';
export * from './losses';
export * from './early-stopping';
export * from './metrics';
