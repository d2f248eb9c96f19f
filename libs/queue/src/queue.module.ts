import { BullModule } from '@nestjs/bullmq';
import { Module, type DynamicModule } from '@nestjs/common';
import { ALL_QUEUES } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { CancelWatcher } from './cancel-watcher';
import { JobProducer } from './job-producer.service';
import { REDIS_ROLE, RedisClientHolder } from './redis.provider';
import { connectionFromConfig, type RedisRole } from './redis-connection';

export interface QueueModuleOptions {
  /**
   * 'api': every connection fails fast while Redis is away (a request answers 503, never hangs);
   * 'worker' (default): connections wait for Redis, as BullMQ's workers require.
   */
  role?: Extract<RedisRole, 'api' | 'worker'>;
}

/**
 * BullMQ wiring shared by the API (producer of every queue) and the worker (processors of some).
 * Connection and key prefix come from the one config; tests isolate themselves with QUEUE_PREFIX.
 */
@Module({})
export class QueueModule {
  static forRoot(opts: QueueModuleOptions = {}): DynamicModule {
    const config = loadConfig();
    const role = opts.role ?? 'worker';
    return {
      module: QueueModule,
      global: true,
      imports: [
        BullModule.forRoot({ connection: connectionFromConfig(config, role), prefix: config.QUEUE_PREFIX }),
        BullModule.registerQueue(...ALL_QUEUES.map((name) => ({ name }))),
      ],
      providers: [JobProducer, RedisClientHolder, CancelWatcher, { provide: REDIS_ROLE, useValue: role }],
      exports: [BullModule, JobProducer, RedisClientHolder, CancelWatcher],
    };
  }
}
