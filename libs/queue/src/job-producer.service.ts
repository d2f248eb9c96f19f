import { getQueueToken } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Job, JobsOptions, Queue } from 'bullmq';
import {
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

export type EnvelopedJob<N extends JobName> = Job<JobEnvelope<JobDataOf<N>>>;

/** The only way the apps put jobs in a queue: validated, wrapped in the envelope, with the job's options. */
@Injectable()
export class JobProducer {
  private readonly retention: JobRetention = jobRetention(loadConfig());

  constructor(private readonly moduleRef: ModuleRef) {}

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
    return this.queueOf(name).add(name, envelope, { ...jobOptionsOf(name, this.retention), ...opts }) as Promise<
      EnvelopedJob<N>
    >;
  }
}
