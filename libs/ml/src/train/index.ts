export * from './gradients';
