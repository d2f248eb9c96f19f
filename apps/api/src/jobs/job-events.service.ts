import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { QueueEvents, type ConnectionOptions } from 'bullmq';
import { EventEmitter } from 'node:events';
import { PUBLIC_JOB_TYPES, QUEUE_OF_JOB, type PublicJobType } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { closeConnection, connectionFromConfig, redisAddress, throttledErrorLog } from '@tq/queue';

export type JobEvent =
  | { kind: 'progress'; type: PublicJobType; jobId: string; data: unknown }
  | { kind: 'completed'; type: PublicJobType; jobId: string }
  | { kind: 'failed'; type: PublicJobType; jobId: string; reason: string }
  | { kind: 'active'; type: PublicJobType; jobId: string }
  /** Left BullMQ: a cancelled waiting job (its tombstone answers now), or a retired cancelled one. */
  | { kind: 'removed'; type: PublicJobType; jobId: string };

/**
 * One QueueEvents stream per public queue, fanned out in-process: SSE clients and metrics
 * subscribe here instead of each opening its own blocking Redis connection.
 */
@Injectable()
export class JobEventsService extends EventEmitter implements OnModuleInit, OnModuleDestroy {
  private readonly streams: QueueEvents[] = [];
  private connection: ConnectionOptions | undefined;

  onModuleInit(): void {
    const config = loadConfig();
    this.setMaxListeners(0);
    const logger = new Logger('redis');
    // The 'events' role: reconnects with the capped backoff, but no command timeout (it would
    // cut the blocking read); no request awaits these streams. On a cluster, one client each
    // stream duplicates (a blocking read needs its own).
    const connection = (this.connection = connectionFromConfig(config, 'events'));
    for (const type of PUBLIC_JOB_TYPES) {
      const events = new QueueEvents(QUEUE_OF_JOB[type], { connection, prefix: config.QUEUE_PREFIX });
      const where = `Redis at ${redisAddress(config)} (events of ${type})`;
      events.on('error', throttledErrorLog(logger, where, 30_000));
      events.on('progress', ({ jobId, data }) => this.emitEvent({ kind: 'progress', type, jobId, data }));
      events.on('completed', ({ jobId }) => this.emitEvent({ kind: 'completed', type, jobId }));
      events.on('failed', ({ jobId, failedReason }) =>
        this.emitEvent({ kind: 'failed', type, jobId, reason: failedReason }),
      );
      events.on('active', ({ jobId }) => this.emitEvent({ kind: 'active', type, jobId }));
      events.on('removed', ({ jobId }) => this.emitEvent({ kind: 'removed', type, jobId }));
      this.streams.push(events);
    }
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.close()));
    if (this.connection) await closeConnection(this.connection);
  }

  private emitEvent(event: JobEvent): void {
    this.emit('event', event);
  }
}
