export * from './inference-engine';
export * from './artifact-names';
export * from './onnx-artifacts';
export * from './attach-onnx';
export * from './predictions';
export * from './errors';
export { resolveExecutionProviders, cudaProviderInstalled } from './execution-providers';
export { PreprocessingCache, readPreprocessing } from './preprocessing-cache';
export type { OrtSessionOptions, ModelRunner } from './model-runners';
