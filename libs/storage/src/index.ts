export * from './artifact-store';
export * from './tfjs-file-io';
export * from './model-registry';
export * from './dataset-store';
export * from './dataset-types';
export * from './blocks-file';
export * from './job-input-store';
export * from './read-stream';
