import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { Logger, Module, type DynamicModule, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import type { ConnectionOptions, Queue } from 'bullmq';
import { ALL_QUEUES } from '@tq/contracts';
import { VersionMetaCache } from '@tq/storage';
import { loadConfig } from '@tq/config';
import { CancelWatcher } from './cancel-watcher';
import { JobProducer } from './job-producer.service';
import { PrefixClaimService } from './prefix-claim.service';
import { REDIS_ROLE, RedisClientHolder } from './redis.provider';
import { RedisVersionMetaCache } from './redis-version-meta-cache';
import { closeConnection, connectionFromConfig, redisAddress, type RedisRole } from './redis-connection';
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
    const connection = connectionFromConfig(config, role);
    return {
      module: QueueModule,
      global: true,
      imports: [
        BullModule.forRoot({ connection, prefix: config.QUEUE_PREFIX }),
        BullModule.registerQueue(...ALL_QUEUES.map((name) => ({ name }))),
      ],
      providers: [
        JobProducer,
        RedisClientHolder,
        PrefixClaimService,
        CancelWatcher,
        { provide: VersionMetaCache, useClass: RedisVersionMetaCache },
        { provide: REDIS_ROLE, useValue: role },
        queueErrorLogs(redisAddress(config)),
        { provide: SharedConnection, useValue: new SharedConnection(connection) },
      ],
      exports: [BullModule, JobProducer, RedisClientHolder, CancelWatcher, VersionMetaCache],
    };
  }
}

/**
 * Each queue's connection errors, logged once per 30 s: unheard, BullMQ prints every reconnect
 * attempt's error to the console. A factory of the queues, so the listeners are on as soon as the
 * queues exist (an onModuleInit hook came after the first errors of a start without Redis).
 */
function queueErrorLogs(address: string): Provider {
  return {
    provide: Symbol('QUEUE_ERROR_LOGS'),
    inject: ALL_QUEUES.map((name) => getQueueToken(name)),
    useFactory: (...queues: Queue[]) => {
      const logger = new Logger('redis');
      for (const queue of queues)
        queue.on('error', throttledErrorLog(logger, `Redis at ${address} (queue ${queue.name})`, 30_000));
      return true;
    },
  };
}

/**
 * On a cluster, the one Cluster client the queues and the workers' commands share (BullMQ closes
 * only the clients it made): closed last, after BullMQ's workers and queues (their modules are
 * shut down before this global one).
 */
class SharedConnection implements OnApplicationShutdown {
  constructor(private readonly connection: ConnectionOptions) {}

  onApplicationShutdown(): Promise<void> {
    return closeConnection(this.connection);
  }
}
