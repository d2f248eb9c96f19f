import { QueueEvents } from 'bullmq';
import { connectionFromConfig } from '@tq/queue';

/**
 * Completion times of a queue's jobs by id, from BullMQ QueueEvents. Exists so the system and its
 * bare-BullMQ baseline are timed by the same observer ("completed" events), never one by polling
 * the API and the other by events. An event may beat the submit's reply: both orders work.
 */
export class Completions {
  private readonly at = new Map<string, number | Error>();
  private readonly waiters = new Map<string, () => void>();

  private constructor(private readonly events: QueueEvents) {
    events.on('completed', ({ jobId }) => this.settle(jobId, performance.now()));
    events.on('failed', ({ jobId, failedReason }) =>
      this.settle(jobId, new Error(`job ${jobId} failed: ${failedReason}`)),
    );
  }

  static async open(queue: string, prefix: string, url: string): Promise<Completions> {
    const events = new QueueEvents(queue, { connection: connectionFromConfig({ REDIS_URL: url }), prefix });
    await events.waitUntilReady();
    return new Completions(events);
  }

  private settle(id: string, v: number | Error): void {
    this.at.set(id, v);
    this.waiters.get(id)?.();
  }

  /** performance.now() at which job `id` completed; throws if it failed or is not done within timeoutMs. */
  async wait(id: string, timeoutMs: number): Promise<number> {
    if (!this.at.has(id)) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => this.waiters.set(id, r)),
        new Promise((_, fail) => {
          timer = setTimeout(() => fail(new Error(`job ${id} not done after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]).finally(() => {
        clearTimeout(timer);
        this.waiters.delete(id);
      });
    }
    const v = this.at.get(id)!;
    this.at.delete(id);
    if (v instanceof Error) throw v;
    return v;
  }

  close(): Promise<void> {
    return this.events.close();
  }
}
