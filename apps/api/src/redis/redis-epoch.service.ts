import { randomUUID } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { RedisClientHolder } from '@tq/queue';

/** The marker: written once (SET NX) into an empty Redis; a Redis that restarted empty has none. */
const epochKey = (prefix: string) => `${prefix}:tq-epoch`;
/** When Redis was found to have lost its data, newest first (so an API started later knows too). */
const lossesKey = (prefix: string) => `${prefix}:tq-data-lost`;
const KEEP_LOSSES = 10;
/** /health re-reads the marker at most this often; every reconnect reads it at once. */
const CHECK_EVERY_MS = 2000;

/**
 * Detects that Redis lost its data since this API started: a Redis without persistence that
 * restarts comes back empty, and its jobs vanish without a trace (GET answered 404, /health "ok").
 * The API writes a marker key when it connects; when the marker is gone or changed, Redis
 * restarted empty (or was flushed): the loss is logged and kept, /health reports it, and a job id
 * issued here that Redis no longer has answers 410 naming it.
 */
@Injectable()
export class RedisEpoch implements OnModuleInit {
  private readonly logger = new Logger('redis');
  private seen: string | undefined;
  private seenAt = 0;
  private readonly lossTimes: string[] = [];
  private checking: Promise<void> | undefined;

  constructor(private readonly redis: RedisClientHolder) {}

  onModuleInit(): void {
    this.redis.client.on('ready', () => void this.check(true));
    if (this.redis.ready) void this.check(true);
  }

  /** Losses seen by this process, newest first (ISO times). */
  get losses(): readonly string[] {
    return this.lossTimes;
  }

  /** Losses this process saw or another recorded in Redis, newest first; [] when Redis does not answer. */
  async recordedLosses(): Promise<string[]> {
    const stored = await this.redis.client.lrange(lossesKey(this.redis.prefix), 0, KEEP_LOSSES - 1).catch(() => []);
    return [...new Set([...this.lossTimes, ...stored])].sort().reverse();
  }

  /** Reads the marker (at most every CHECK_EVERY_MS unless forced); never throws. */
  check(force = false): Promise<void> {
    if (!this.redis.ready || (!force && Date.now() - this.seenAt < CHECK_EVERY_MS)) return Promise.resolve();
    this.checking ??= this.read()
      .catch(() => undefined)
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async read(): Promise<void> {
    const { client, prefix } = this.redis;
    await client.set(epochKey(prefix), `${new Date().toISOString()} ${randomUUID()}`, 'NX');
    const current = await client.get(epochKey(prefix));
    if (this.seen !== undefined && current !== this.seen) await this.lost(client, prefix);
    this.seen = current ?? undefined;
    this.seenAt = Date.now();
  }

  private async lost(client: RedisClientHolder['client'], prefix: string): Promise<void> {
    // A restart: Redis's start time. A flush without one (uptime older than the marker last seen): now.
    const uptime = /^uptime_in_seconds:(\d+)/m.exec(await client.info('server'))?.[1];
    const startedAt = uptime === undefined ? Date.now() : Date.now() - Number(uptime) * 1000;
    const at = new Date(startedAt > this.seenAt ? startedAt : Date.now()).toISOString();
    this.lossTimes.unshift(at);
    this.logger.error(
      `Redis at ${this.redis.address} lost its data (restarted empty at ${at}): every job it held is gone`,
    );
    await client
      .multi()
      .lpush(lossesKey(prefix), at)
      .ltrim(lossesKey(prefix), 0, KEEP_LOSSES - 1)
      .exec();
  }
}
