export * from './backend/backend';
export * from './kernels';
export * from './data';
export * from './model';
export * from './train';
export * from './compress';
export * from './onnx';
export * from './inference';
