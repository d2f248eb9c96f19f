import { getQueueToken } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Job, JobsOptions, Queue } from 'bullmq';
import {
  JOB_REGISTRY,
  QUEUE_OF_JOB,
  buildEnvelope,
  jobOptionsOf,
  type JobDataOf,
  type JobEnvelope,
  type JobMeta,
  type JobName,
  type JobRetention,
  type QueueName,
} from '@tq/contracts';
import { jobRetention, loadConfig } from '@tq/config';
import { fairSharePriority } from './quotas';
import { RedisClientHolder } from './redis.provider';

export type EnvelopedJob<N extends JobName> = Job<JobEnvelope<JobDataOf<N>>>;

/**
 * The only way the apps put jobs in a queue: validated, wrapped in the envelope, with the job's
 * options, and (FAIR_SHARE=on) a priority that makes tenants take turns.
 */
@Injectable()
export class JobProducer {
  private readonly retention: JobRetention = jobRetention(loadConfig());
  private readonly fairShare = loadConfig().FAIR_SHARE === 'on';

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly redis: RedisClientHolder,
  ) {}

  queue(name: QueueName): Queue {
    return this.moduleRef.get<Queue>(getQueueToken(name), { strict: false });
  }

  queueOf(job: JobName): Queue {
    return this.queue(QUEUE_OF_JOB[job]);
  }

  /** Validates (FieldError naming each bad field), wraps in the envelope, adds with the job's default options. */
  async add<N extends JobName>(
    name: N,
    request: unknown,
    meta: JobMeta,
    opts: JobsOptions = {},
  ): Promise<EnvelopedJob<N>> {
    const envelope = buildEnvelope(name, request, meta);
    const queue = this.queueOf(name);
    // Jobs tenants submit take turns per tenant (FAIR_SHARE, fair-share.ts); spawned ones keep FIFO.
    const fair =
      this.fairShare && JOB_REGISTRY[name].public && opts.priority === undefined
        ? { priority: await fairSharePriority(this.redis.client, this.redis.prefix, queue.name, meta.tenant) }
        : {};
    return queue.add(name, envelope, { ...jobOptionsOf(name, this.retention), ...fair, ...opts }) as Promise<
      EnvelopedJob<N>
    >;
  }
}
