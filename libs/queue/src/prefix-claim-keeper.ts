import { setTimeout as sleep } from 'node:timers/promises';
import { ThrottledLog } from '@tq/contracts';
import type { StoreIdentity } from '@tq/storage';
import { QueuePrefixInUseError, claimQueuePrefix, replacedClaimWarning } from './prefix-claim';
import type { RedisClientHolder } from './redis.provider';

/**
 * The claim is made again this often, besides on every reconnect: a Redis flushed without a
 * restart, or `npm run take-prefix` for another store while this system runs, is seen within it.
 * One EVAL (and one read of the store's id) a process per period.
 */
const RECLAIM_EVERY_MS = 10_000;
/** After a failed first claim (Redis or the store did not answer), the next try waits this long. */
const RETRY_MS = 1000;
/** EX_CONFIG (sysexits.h): the exit of a process on another store's prefix; `npm start` does not restart it. */
export const EXIT_FOREIGN_PREFIX = 78;

export interface ClaimLog {
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Holds this process's claim on its QUEUE_PREFIX (prefix-claim.ts): made at start, again on every
 * reconnect and every RECLAIM_EVERY_MS, with the store's id read afresh each time (so a store
 * emptied in place under a running system is claimed under its new id, not fought over). When
 * another store holds the prefix, `onForeign` is called (exitOnForeignPrefix: the process stops).
 */
export class PrefixClaimKeeper {
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<boolean> | undefined;
  private stopped = false;
  private readonly failures: ThrottledLog;
  private readonly onReady = (): void => void this.claim();

  constructor(
    private readonly redis: RedisClientHolder,
    private readonly identify: () => Promise<StoreIdentity>,
    private readonly log: ClaimLog,
    private readonly onForeign: (err: QueuePrefixInUseError) => void,
  ) {
    this.failures = new ThrottledLog((line) => log.warn(line), 60_000);
  }

  /**
   * Claims at once when Redis is ready. With `waitForRedis` (a worker, a serve replica: nothing
   * to do without Redis) it resolves only once the claim is made, so no job is taken before; the
   * API starts without Redis (it answers 503) and claims at its first connection.
   */
  async start(waitForRedis: boolean): Promise<void> {
    this.redis.client.on('ready', this.onReady);
    this.timer = setInterval(() => void this.claim(), RECLAIM_EVERY_MS).unref();
    if (!waitForRedis) {
      await this.claim();
      return;
    }
    while (!this.stopped) {
      if (!this.redis.ready) await new Promise((resolve) => this.redis.client.once('ready', resolve));
      if (await this.claim()) return;
      await sleep(RETRY_MS);
    }
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.redis.client.off('ready', this.onReady);
  }

  /** True when this store holds the prefix now; false when Redis or the store failed (tried again later). */
  private claim(): Promise<boolean> {
    this.claiming ??= this.claimOnce().finally(() => (this.claiming = undefined));
    return this.claiming;
  }

  private async claimOnce(): Promise<boolean> {
    if (this.stopped || !this.redis.ready) return false;
    try {
      const identity = await this.identify();
      const outcome = await claimQueuePrefix(this.redis.client, this.redis.prefix, identity, this.redis.address);
      if (outcome.kind === 'replaced')
        this.log.warn(replacedClaimWarning(this.redis.prefix, identity.location, outcome.previous));
      return true;
    } catch (err) {
      if (!(err instanceof QueuePrefixInUseError)) {
        this.failures.log(`the claim on QUEUE_PREFIX "${this.redis.prefix}" was not checked: ${String(err)}`, 'fail');
        return false;
      }
      this.close();
      this.onForeign(err);
      return false;
    }
  }
}

/** The policy of every app: a process on another store's prefix says why and stops (EXIT_FOREIGN_PREFIX). */
export function exitOnForeignPrefix(log: ClaimLog): (err: QueuePrefixInUseError) => void {
  return (err) => {
    log.error(err.message);
    process.exit(EXIT_FOREIGN_PREFIX);
  };
}
