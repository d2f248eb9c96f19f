import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Backoff, PUBLIC_JOB_TYPES, QUEUE_OF_JOB, QueueName, ThrottledLog } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { JobProducer, RedisClientHolder } from '@tq/queue';
import { ArtifactStore, JobFiles } from '@tq/storage';
import { CHECKPOINT_NAMING } from './checkpoint-naming';
import { RetentionSweeper } from './retention-sweeper';

/**
 * Runs the retention sweeper (see RetentionSweeper) every RETENTION_SWEEP_MS in every worker; the
 * sweep lock makes one of them do the work each time. A failed sweep (Redis away) is retried after
 * an exponential backoff capped by REDIS_RETRY_MAX_MS, and logged once a minute, not once a round.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('retention');
  private readonly config = loadConfig();
  private readonly errors = new ThrottledLog((line) => this.logger.warn(line), 60_000);
  private readonly backoff = new Backoff({
    baseMs: this.config.RETENTION_SWEEP_MS,
    capMs: this.config.REDIS_RETRY_MAX_MS,
  });
  private sweeper: RetentionSweeper | undefined;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly producer: JobProducer,
    private readonly redis: RedisClientHolder,
    private readonly store: ArtifactStore,
  ) {}

  onApplicationBootstrap(): void {
    // Built here, not in the constructor: the queues are resolved only once every provider exists.
    const c = this.config;
    this.sweeper = new RetentionSweeper(
      {
        redis: this.redis.client,
        prefix: this.redis.prefix,
        queues: new Map(PUBLIC_JOB_TYPES.map((t) => [t, this.producer.queue(QUEUE_OF_JOB[t])])),
        aggregateQueue: this.producer.queue(QueueName.Aggregate),
        shardQueue: this.producer.queue(QueueName.TrainShard),
        files: new JobFiles(this.store, CHECKPOINT_NAMING),
      },
      { count: c.JOB_HISTORY_COUNT, ageMs: c.JOB_HISTORY_AGE_SECONDS * 1000, maxBytes: c.JOB_HISTORY_MAX_BYTES },
      // A holder that dies blocks the others for one lease: a few rounds, at least a minute.
      { lockTtlMs: Math.max(60_000, 4 * c.RETENTION_SWEEP_MS) },
    );
    // Workers started together do not all ask for the lock at the same moment.
    this.schedule(Math.round(Math.random() * c.RETENTION_SWEEP_MS));
  }

  async onApplicationShutdown(): Promise<void> {
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopping.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.running = this.round().finally(() => (this.running = undefined));
    }, ms);
  }

  private async round(): Promise<void> {
    try {
      const report = await this.sweeper?.sweep(this.stopping.signal);
      this.backoff.reset();
      this.errors.flush();
      for (const line of report?.fileErrors ?? []) this.errors.log(`retention left files behind: ${line}`, 'files');
      if (report && (report.removed.length || report.orphans.length))
        this.logger.debug(
          `removed ${report.removed.length} finished jobs and ${report.orphans.length} orphan files (${report.recorded} newly finished)`,
        );
    } catch (err) {
      this.errors.log(`retention sweep failed: ${(err as Error).message}`, 'sweep');
      // After failures the next round waits longer (doubling, capped; never less than the interval).
      this.schedule(Math.max(this.config.RETENTION_SWEEP_MS, this.backoff.next()));
      return;
    }
    this.schedule(this.config.RETENTION_SWEEP_MS);
  }
}
