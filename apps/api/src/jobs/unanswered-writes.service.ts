import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { type PublicJobType } from '@tq/contracts';
import { JobProducer, RedisClientHolder, cancelKey, undoTombstone, readTombstone, requestCancel } from '@tq/queue';
import { loadConfig } from '@tq/config';
import { JobInputStore } from '@tq/storage';
import { idempotencyMarker } from './idempotency';

/** While undos are pending, how often they are tried again (each try costs a command or two). */
const RETRY_MS = 1000;

type Undo = () => Promise<void>;

/**
 * A submission or a cancel either answers the client or has no effect. While Redis is away the
 * API's connections queue nothing (no offline queue, nothing resent after a reconnect), so a command
 * that failed at once was never sent. A command that timed out (Redis hung, not down) was sent and
 * may still run when Redis wakes up, after the client got its 503: the job it added is a ghost,
 * the cancel it set applies late. Each such write is undone here.
 *
 * The undo is sent at once, on the connection the write went out on: Redis runs one connection's
 * commands in order, so a hung Redis that wakes runs the write and its undo back to back, before a
 * worker's next command (the worker waits on a different connection and needs a round trip to
 * take a job). When the undo cannot be sent or answered, it is kept and tried every second until
 * Redis answers. The window that remains: a connection that dropped with the write read by Redis
 * and the undo not (the undo runs on the next try, and a worker may have taken the job meanwhile:
 * it is then cancelled at its next batch, not removed); a cancel whose last step (removing the
 * waiting job) timed out and then ran (the job stays cancelled, as its tombstone says); and an API
 * that exits with undos pending (they are in memory only).
 */
@Injectable()
export class UnansweredWrites implements OnModuleDestroy {
  private readonly logger = new Logger('unanswered');
  private readonly pending = new Map<string, Undo>();
  private readonly running = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly producer: JobProducer,
    private readonly redis: RedisClientHolder,
    private readonly inputs: JobInputStore,
  ) {}

  /**
   * A submission of `jobId`, begun at `since`, timed out: the job goes (a worker that took it
   * meanwhile is told to stop). A random id cannot name an older job, so its removal is sent at
   * once; an Idempotency-Key id can name one the client got earlier (BullMQ then ignored this add),
   * so the job is removed only when it was added after `since`, which takes a read first.
   */
  submissionTimedOut(jobId: string, type: PublicJobType, tenant: string, since: number, idempotent: boolean): void {
    const queue = this.producer.queueOf(type);
    this.schedule(`submit:${jobId}`, async () => {
      if (idempotent) {
        const job = await queue.getJob(jobId);
        if (!job || job.timestamp < since) return;
      }
      if ((await queue.remove(jobId)) !== 1 && (await queue.getJobState(jobId)) !== 'unknown') {
        await requestCancel(this.redis.client, this.redis.prefix, jobId, loadConfig().JOB_HISTORY_AGE_SECONDS);
      } else await this.inputs.forTenant(tenant).remove(jobId);
      if (idempotent) await this.redis.client.del(idempotencyMarker(this.redis.prefix, jobId));
      this.logger.warn(`submission ${jobId} timed out (Redis hung): undone`);
    });
  }

  /** A cancel of `jobId` timed out: its request flag goes, and its tombstone while the job is still queued. */
  cancelTimedOut(jobId: string, type: PublicJobType): void {
    this.schedule(`cancel:${jobId}`, async () => {
      const { client, prefix } = this.redis;
      await client.del(cancelKey(prefix, jobId));
      const tombstone = await readTombstone(client, prefix, jobId);
      if (tombstone && (await this.producer.queueOf(type).getJobState(jobId)) !== 'unknown')
        await undoTombstone(client, prefix, tombstone);
      this.logger.warn(`cancel of ${jobId} timed out (Redis hung): undone`);
    });
  }

  /** The client got an answer for `key` ("submit:<id>", "cancel:<id>") after all (a retry): nothing to undo. */
  answered(key: string): void {
    this.pending.delete(key);
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  private schedule(key: string, undo: Undo): void {
    this.pending.set(key, undo);
    void this.run(key, undo);
    this.timer ??= setInterval(() => {
      for (const [id, pendingUndo] of this.pending) if (this.redis.ready) void this.run(id, pendingUndo);
      if (this.pending.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, RETRY_MS);
  }

  private async run(key: string, undo: Undo): Promise<void> {
    if (this.running.has(key)) return;
    this.running.add(key);
    try {
      await undo();
      if (this.pending.get(key) === undo) this.pending.delete(key);
    } catch {
      // Kept: tried again while Redis answers.
    } finally {
      this.running.delete(key);
    }
  }
}
