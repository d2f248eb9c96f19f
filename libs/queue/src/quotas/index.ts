export * from './quota-keys';
export * from './tenant-limits';
export * from './queued-jobs';
export * from './active-jobs';
export * from './fair-share';
