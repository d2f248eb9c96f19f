export * from './blob-errors';
export * from './blob-key';
export * from './blob-store';
export * from './blob-store-factory';
export * from './local-blob-store';
export * from './s3-blob-store';
export * from './crypto/encrypted-blob-store';
export { CHUNK_SIZE as ENCRYPTION_CHUNK_SIZE, HEADER_SIZE as ENCRYPTION_HEADER_SIZE } from './crypto/object-cipher';
export * from './crypto/reencrypt';
