export * from './dynamic-batcher';
export * from './batched-predictor';
