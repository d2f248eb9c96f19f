export * from './storage.module';
export * from './compute.module';
