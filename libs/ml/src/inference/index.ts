export * from './inference-engine';
export * from './attach-onnx';
export * from './predictions';
export * from './errors';
export { resolveExecutionProviders, cudaProviderInstalled } from './execution-providers';
