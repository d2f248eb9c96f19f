export * from './blob-errors';
export * from './blob-key';
export * from './blob-store';
export * from './blob-store-factory';
export * from './local-blob-store';
export * from './s3-blob-store';
