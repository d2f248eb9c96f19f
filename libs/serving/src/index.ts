export * from './dynamic-batcher';
export * from './batched-predictor';
export * from './replica-registry';
export * from './serve-metrics';
export * from './predict-metrics';
