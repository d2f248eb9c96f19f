import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { Logger, Module, type DynamicModule, type Provider } from '@nestjs/common';
import type { Queue } from 'bullmq';
import { ALL_QUEUES } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { CancelWatcher } from './cancel-watcher';
import { JobProducer } from './job-producer.service';
import { REDIS_ROLE, RedisClientHolder } from './redis.provider';
import { connectionFromConfig, redisAddress, type RedisRole } from './redis-connection';
import { throttledErrorLog } from './redis-errors';

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
      providers: [
        JobProducer,
        RedisClientHolder,
        CancelWatcher,
        { provide: REDIS_ROLE, useValue: role },
        queueErrorLogs(config.REDIS_URL),
      ],
      exports: [BullModule, JobProducer, RedisClientHolder, CancelWatcher],
    };
  }
}

/**
 * Each queue's connection errors, logged once per 30 s: unheard, BullMQ prints every reconnect
 * attempt's error to the console. A factory of the queues, so the listeners are on as soon as the
 * queues exist (an onModuleInit hook came after the first errors of a start without Redis).
 */
function queueErrorLogs(redisUrl: string): Provider {
  return {
    provide: Symbol('QUEUE_ERROR_LOGS'),
    inject: ALL_QUEUES.map((name) => getQueueToken(name)),
    useFactory: (...queues: Queue[]) => {
      const logger = new Logger('redis');
      for (const queue of queues)
        queue.on(
          'error',
          throttledErrorLog(logger, `Redis at ${redisAddress(redisUrl)} (queue ${queue.name})`, 30_000),
        );
      return true;
    },
  };
}
