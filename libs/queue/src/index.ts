export * from './redis-connection';
export * from './queue.module';
export * from './job-producer.service';
export * from './handles-job.decorator';
export * from './typed-worker-host';
export * from './cancellation';
export * from './cancel-watcher';
export * from './redis.provider';
