export * from './integrated-gradients';
