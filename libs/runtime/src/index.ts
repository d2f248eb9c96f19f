export * from './storage.module';
export * from './compute.module';
export * from './process-metrics';
export * from './job-metrics';
export * from './metrics-server';
export * from './process-priority';
export * from './listen-backlog';
export * from './keep-alive';
