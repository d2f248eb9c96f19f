import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule } from '@nestjs/common';
import { ALL_QUEUES } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { CancelWatcher } from './cancel-watcher';
import { JobProducer } from './job-producer.service';
import { RedisClientHolder } from './redis.provider';
import { connectionFromConfig, workerConnectionFromConfig } from './redis-connection';

/**
 * BullMQ wiring shared by the API (producer of every queue) and the worker (processors of some).
 * Connection and key prefix come from the one config; tests isolate themselves with QUEUE_PREFIX.
 */
@Module({})
export class QueueModule {
  /** `worker`: the worker's connections (reconnects with backoff); the API's otherwise. */
  static forRoot(opts: { worker?: boolean } = {}): DynamicModule {
    const config = loadConfig();
    const connection = opts.worker ? workerConnectionFromConfig(config) : connectionFromConfig(config);
    return {
      module: QueueModule,
      global: true,
      imports: [
        BullModule.forRoot({ connection, prefix: config.QUEUE_PREFIX }),
        BullModule.registerQueue(...ALL_QUEUES.map((name) => ({ name }))),
      ],
      providers: [JobProducer, RedisClientHolder, CancelWatcher],
      exports: [BullModule, JobProducer, RedisClientHolder, CancelWatcher],
    };
  }
}
