import { getQueueToken } from '@nestjs/bullmq';
import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { Job, JobsOptions, Queue } from 'bullmq';
import { DEFAULT_JOB_OPTIONS, JOB_DATA_SCHEMAS, QUEUE_OF_JOB, type JobDataOf, type JobName, type QueueName } from '@tq/contracts';
import { InvalidJobDataError } from './invalid-job-data.error';

/** The only way jobs enter a queue: the payload is validated against its schema first. */
@Injectable()
export class JobProducer {
  constructor(private readonly moduleRef: ModuleRef) {}

  queue(name: QueueName): Queue {
    return this.moduleRef.get<Queue>(getQueueToken(name), { strict: false });
  }

  queueOf(job: JobName): Queue {
    return this.queue(QUEUE_OF_JOB[job]);
  }

  /** Validates (defaults filled in), then adds with the job's default options. */
  async add<N extends JobName>(name: N, payload: unknown, opts: JobsOptions = {}): Promise<Job<JobDataOf<N>>> {
    const parsed = JOB_DATA_SCHEMAS[name].safeParse(payload);
    if (!parsed.success) throw new InvalidJobDataError(parsed.error);
    return this.queueOf(name).add(name, parsed.data, { ...DEFAULT_JOB_OPTIONS[name], ...opts }) as Promise<Job<JobDataOf<N>>>;
  }
}
