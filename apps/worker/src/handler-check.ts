import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { ALL_JOBS, QUEUE_OF_JOB, type JobName, type QueueName } from '@tq/contracts';
import { HANDLES_JOB } from '@tq/queue';

export const SERVED_QUEUES = Symbol('SERVED_QUEUES');

/**
 * Start-up check: every job name on the queues this worker serves has exactly one handler.
 * A missing or doubled handler fails the boot instead of leaving jobs waiting forever.
 */
@Injectable()
export class HandlerCheck implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(SERVED_QUEUES) private readonly served: QueueName[],
  ) {}

  onApplicationBootstrap(): void {
    const handled = this.discovery
      .getProviders()
      .map((p) => (p.metatype ? (Reflect.getMetadata(HANDLES_JOB, p.metatype) as JobName | undefined) : undefined))
      .filter((n): n is JobName => n !== undefined);
    const problems = ALL_JOBS.filter((name) => this.served.includes(QUEUE_OF_JOB[name]))
      .map((name) => ({ name, count: handled.filter((h) => h === name).length }))
      .filter(({ count }) => count !== 1)
      .map(({ name, count }) => `job "${name}" has ${count} handlers`);
    if (problems.length) throw new Error(`worker handler check failed: ${problems.join('; ')}`);
  }
}
