import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import type { RedisClient } from './deps';
import {
  addScaledBytes,
  chunkCount,
  copyChunks,
  queueFloatsDelete,
  queueFloatsWrite,
  readChunks,
  readFloats,
  CHUNK_BYTES,
} from './chunked-blob';
import type { ParamServerDeps } from './deps';
import { runKeys, type RunKeys } from './keys';
import {
  frameMessage,
  publishedStateSchema,
  shardMessageSchema,
  unframeMessage,
  type PublishedState,
  type ReceivedMessage,
  type ShardMessage,
  type ShardMessageInput,
} from './messages';

export interface ChannelOptions {
  runId: string;
  shards: number;
  /** Key prefix (the BullMQ prefix of the run's queues by default). */
  prefix?: string;
  /** Safety-net expiry of every key of the run, refreshed as the run goes (cleanup removes them anyway). */
  // Both forwarded from optional worker settings: undefined means the default.
  ttlMs?: number | undefined;
  chunkBytes?: number | undefined;
  /** Published weight versions kept readable: a reader that started on an older one retries. */
  keepVersions?: number;
}

export const DEFAULT_KEY_TTL_MS = 24 * 3600_000;

/** One attempt's hold on a role of the run (channel.claim). */
export interface Claim {
  readonly role: string;
  readonly token: string;
}

/** Thrown by an attempt that a newer attempt of the same job has replaced (see RunChannel.claim). */
export class SupersededError extends Error {
  constructor(runId: string, role: string) {
    super(`run ${runId}: this attempt of the ${role} was superseded by a newer one (its job lock had lapsed)`);
    this.name = 'SupersededError';
  }
}

/**
 * The Redis side of one run: published weights (versioned, chunked), the shards' inbox (a list of
 * small messages announcing chunked payloads), per-shard wake-up lists, the abort flag. Never
 * pub/sub: it drops messages silently (and anything over 32 MB). Blocking reads (BLPOP) use a
 * connection of their own, duplicated from the one given, so they never hold up other commands.
 */
export class RunChannel {
  readonly keys: RunKeys;
  private readonly ttlMs: number;
  private readonly chunkBytes: number;
  private readonly keep: number;
  private blocking: RedisClient | undefined;
  private hasBlmpop: boolean | undefined;
  /** Float count of the run's weights, once a state has told it. */
  private floatsSeen: number | undefined;
  /** The next version's weight chunks, fetched by waitForState along with its note; pullWeights takes them. */
  private prefetched: { version: number; chunks: Buffer[] } | undefined;

  constructor(
    readonly redis: RedisClient,
    readonly opts: ChannelOptions,
  ) {
    this.keys = runKeys(opts.runId, opts.prefix);
    this.ttlMs = opts.ttlMs ?? DEFAULT_KEY_TTL_MS;
    this.chunkBytes = opts.chunkBytes ?? CHUNK_BYTES;
    this.keep = Math.max(2, opts.keepVersions ?? 3);
  }

  // ---- aggregator side -------------------------------------------------------------------

  /**
   * Makes `weights` readable as `state.version` and wakes every shard, in one round trip: chunks
   * first, then the state that names them (so a reader never finds the state before its chunks);
   * the version that falls out of the kept window is deleted in the same pipeline.
   */
  async publish(state: PublishedState, weights?: Float32Array): Promise<void> {
    const k = this.keys;
    const pipe = this.redis.pipeline();
    if (weights) {
      queueFloatsWrite(pipe, (c) => k.weights(state.version, c), weights, this.ttlMs, this.chunkBytes);
      const old = state.version - this.keep;
      if (old >= 0) queueFloatsDelete(pipe, (c) => k.weights(old, c), weights.length, this.chunkBytes);
    }
    pipe.hset(k.state, { version: state.version, step: state.step, status: state.status, floats: state.floats });
    const note = JSON.stringify(state);
    for (let i = 0; i < this.opts.shards; i++) {
      // A one-element list per shard: it holds only the latest news, so it never grows.
      pipe.del(k.wake(i)).rpush(k.wake(i), note).pexpire(k.wake(i), this.ttlMs);
    }
    for (const key of [k.state, k.inbox, k.control, k.cursors]) pipe.pexpire(key, this.ttlMs);
    await exec(pipe);
  }

  /** The next shard message, or null after `timeoutMs`. */
  async nextMessage(timeoutMs: number): Promise<ReceivedMessage | null> {
    return (await this.nextMessages(timeoutMs, 1))[0] ?? null;
  }

  /**
   * Up to `max` shard messages, waiting up to `timeoutMs` for the first: one BLMPOP (Redis >= 7)
   * takes every message already queued in one round trip; BLPOP, one at a time, on older servers.
   */
  async nextMessages(timeoutMs: number, max: number): Promise<ReceivedMessage[]> {
    this.blocking ??= duplicateOf(this.redis);
    const seconds = Math.max(0.01, timeoutMs / 1000);
    if (this.hasBlmpop !== false) {
      try {
        const reply = await this.blocking.blmpopBuffer(seconds, 1, this.keys.inbox, 'LEFT', 'COUNT', Math.max(1, max));
        this.hasBlmpop = true;
        return reply ? reply[1].map(unframeMessage) : [];
      } catch (err) {
        if (this.hasBlmpop === true || !/unknown command/i.test((err as Error).message)) throw err;
        this.hasBlmpop = false;
      }
    }
    const reply = await this.blocking.blpopBuffer(this.keys.inbox, seconds);
    return reply ? [unframeMessage(reply[1])] : [];
  }

  /** A message's payload (chunked ones are read and deleted); null when it has expired meanwhile. */
  async readPayload(msg: ReceivedMessage, into?: Float32Array): Promise<Float32Array | null> {
    if (msg.inlineBytes) {
      const out = into ?? new Float32Array(msg.floats);
      if (out.length !== msg.floats)
        throw new Error(`readPayload: target holds ${out.length} floats, expected ${msg.floats}`);
      // Copied byte-wise: the reply buffer need not be 4-byte aligned.
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(msg.inlineBytes);
      return out;
    }
    if (!msg.token) throw new Error('message carries no payload');
    const token = msg.token;
    return readFloats(this.redis, (c) => this.keys.payload(token, c), msg.floats, {
      remove: true,
      into,
      chunkBytes: this.chunkBytes,
    });
  }

  /**
   * acc += weight * payload, straight from the received bytes (chunked payloads are read and
   * deleted first, all chunks in one pipeline). False when the payload has expired meanwhile.
   */
  async accumulatePayload(msg: ReceivedMessage, acc: Float32Array, weight: number): Promise<boolean> {
    if (msg.floats !== acc.length)
      throw new Error(`payload of ${msg.floats} floats for an accumulator of ${acc.length}`);
    if (msg.inlineBytes) {
      addScaledBytes(acc, 0, msg.inlineBytes, weight);
      return true;
    }
    if (!msg.token) throw new Error('message carries no payload');
    const token = msg.token;
    const chunks = await readChunks(this.redis, (c) => this.keys.payload(token, c), msg.floats, {
      remove: true,
      chunkBytes: this.chunkBytes,
    });
    if (!chunks) return false;
    let offset = 0;
    for (const b of chunks) {
      addScaledBytes(acc, offset, b, weight);
      offset += b.length >> 2;
    }
    return true;
  }

  async discardPayload(msg: ShardMessage): Promise<void> {
    if (!msg.token || msg.inline) return;
    const token = msg.token;
    const pipe = this.redis.pipeline();
    queueFloatsDelete(pipe, (c) => this.keys.payload(token, c), msg.floats, this.chunkBytes);
    await exec(pipe);
  }

  // ---- shard side ------------------------------------------------------------------------

  async readState(): Promise<PublishedState | null> {
    const h = await this.redis.hgetall(this.keys.state);
    if (!h.version) return null;
    return this.seen(
      publishedStateSchema.parse({
        version: Number(h.version),
        step: Number(h.step),
        status: h.status,
        floats: Number(h.floats),
      }),
    );
  }

  /** Notes the weights' size, so the next waitForState can fetch them along with the note. */
  private seen(state: PublishedState): PublishedState {
    if (state.floats > 0) this.floatsSeen = state.floats;
    return state;
  }

  /**
   * Waits until weights newer than `afterVersion` are out or the run is over; null after
   * `timeoutMs`. The wake list holds the latest news (the published state itself) even if it came
   * before we started waiting, so the usual case costs one BLPOP; once a second without news the
   * state hash is read as well, in case a note was lost (a key expired, a list was cleaned up).
   *
   * The next version's weights come along: GETs of version `afterVersion + 1`'s chunks are queued
   * behind the BLPOP in one pipeline, and Redis runs them the moment it returns (a blocked
   * connection's later commands wait behind it), so pullWeights of that version then costs no
   * round trip (nor a process wake-up). publish() writes the chunks before the note, so a note for
   * that version finds them. Only once the weights' size is known (from an earlier state).
   */
  async waitForState(shard: number, afterVersion: number, timeoutMs: number): Promise<PublishedState | null> {
    const deadline = Date.now() + timeoutMs;
    const fresh = (s: PublishedState | null): s is PublishedState =>
      s !== null && (s.version > afterVersion || s.status !== 'running');
    const next = afterVersion + 1;
    this.prefetched = undefined; // one version's worth at most, never an old one
    for (;;) {
      const left = deadline - Date.now();
      const floats = this.floatsSeen;
      this.blocking ??= duplicateOf(this.redis);
      const pipe = this.blocking
        .pipeline()
        .blpop(this.keys.wake(shard), Math.max(0.01, Math.min(Math.max(left, 0), 1000) / 1000));
      const chunks = floats ? chunkCount(floats, this.chunkBytes) : 0;
      for (let c = 0; c < chunks; c++) pipe.getBuffer(this.keys.weights(next, c));
      const replies = (await pipe.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
      const note = replies[0]?.[1] as [string, string] | null;
      if (note) {
        const state = this.seen(publishedStateSchema.parse(JSON.parse(note[1])));
        if (!fresh(state)) continue;
        const values = replies.slice(1).map(([, v]) => v as Buffer | null);
        if (
          chunks > 0 &&
          state.status === 'running' &&
          state.version === next &&
          state.floats === floats &&
          values.every((v) => v !== null)
        ) {
          this.prefetched = { version: next, chunks: values };
        }
        return state;
      }
      const state = await this.readState();
      if (fresh(state)) return state;
      if (Date.now() >= deadline) return null;
    }
  }

  /** The weights of `state.version` (fetched with its wake note when waitForState could); null when superseded. */
  pullWeights(state: PublishedState, into?: Float32Array): Promise<Float32Array | null> {
    const pre = this.prefetched;
    this.prefetched = undefined;
    if (pre?.version === state.version) {
      const out = copyChunks(pre.chunks, into ?? new Float32Array(state.floats));
      if (out) return Promise.resolve(out);
    }
    return readFloats(this.redis, (c) => this.keys.weights(state.version, c), state.floats, {
      into,
      chunkBytes: this.chunkBytes,
    });
  }

  /**
   * Sends a message and its payload in one round trip: up to one chunk inline in the inbox element,
   * larger ones as chunk keys written first in the same pipeline.
   */
  async push(
    msg: Omit<ShardMessageInput, 'token' | 'floats' | 'inline'>,
    payload?: Float32Array,
    cursor?: number,
  ): Promise<void> {
    const pipe = this.redis.pipeline();
    let frame: Buffer;
    if (payload && payload.byteLength <= this.chunkBytes) {
      frame = frameMessage(shardMessageSchema.parse({ ...msg, inline: true, floats: payload.length }), payload);
    } else if (payload) {
      const token = `${msg.shard}.${randomUUID()}`;
      queueFloatsWrite(pipe, (c) => this.keys.payload(token, c), payload, this.ttlMs, this.chunkBytes);
      frame = frameMessage(shardMessageSchema.parse({ ...msg, token, floats: payload.length }));
    } else {
      frame = frameMessage(shardMessageSchema.parse(msg));
    }
    pipe.rpush(this.keys.inbox, frame).pexpire(this.keys.inbox, this.ttlMs);
    if (cursor !== undefined)
      pipe.hset(this.keys.cursors, String(msg.shard), cursor).pexpire(this.keys.cursors, this.ttlMs);
    await exec(pipe);
  }

  /** Messages waiting for the aggregator (async shards hold back when it is behind). */
  async inboxLength(): Promise<number> {
    return this.redis.llen(this.keys.inbox);
  }

  async readCursor(shard: number): Promise<number> {
    return Number((await this.redis.hget(this.keys.cursors, String(shard))) ?? 0);
  }

  /**
   * Every shard's cursor in one round trip (async: the next local step of each; 0 for a shard
   * that has pushed nothing).
   */
  async readCursors(): Promise<number[]> {
    const fields = Array.from({ length: this.opts.shards }, (_, i) => String(i));
    return (await this.redis.hmget(this.keys.cursors, ...fields)).map((v) => Number(v ?? 0));
  }

  // ---- coordinator side ------------------------------------------------------------------

  async abort(): Promise<void> {
    await this.redis.pipeline().hset(this.keys.control, 'abort', '1').pexpire(this.keys.control, this.ttlMs).exec();
  }

  /** The coordinator asked to stop, or already cleaned the run up (ended marker). */
  async isAborted(): Promise<boolean> {
    return (await this.readControl()).aborted;
  }

  /**
   * The coordinator's word in one round trip: stop (or already cleaned up), the shards no worker
   * has taken, and whether `claim` (see claim()) still holds.
   */
  async readControl(claim?: Claim): Promise<{ aborted: boolean; unstaffed: number[]; superseded: boolean }> {
    const fields = ['abort', 'unstaffed', ...(claim ? [ownerField(claim.role)] : [])];
    const replies =
      (await this.redis
        .pipeline()
        .hmget(this.keys.control, ...fields)
        .exists(this.keys.ended)
        .exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
    const [abort, unstaffed, holder] = (replies[0]?.[1] ?? []) as Array<string | null>;
    return {
      aborted: abort === '1' || replies[1]?.[1] === 1,
      unstaffed: parseShardList(unstaffed),
      superseded: claim !== undefined && holder !== null && holder !== claim.token,
    };
  }

  /**
   * Marks this attempt as the one that plays `role` (coordinator, aggregator, shard:i). BullMQ
   * hands a job to a second worker when the first one's lock lapsed (a process stalled for longer
   * than lockDuration, on a loaded machine) while the first goes on running it: the older attempt
   * then finds itself superseded (isSuperseded) and stops, instead of registering a second model
   * version, competing for the inbox or holding a slot its job's retry needs.
   */
  async claim(role: string): Promise<Claim> {
    const claim = { role, token: randomUUID() };
    await exec(
      this.redis
        .pipeline()
        .hset(this.keys.control, ownerField(role), claim.token)
        .pexpire(this.keys.control, this.ttlMs),
    );
    return claim;
  }

  /** Gives up a claim (a coordinator whose run never started: no key is left behind). */
  async release(claim: Claim): Promise<void> {
    await this.redis.hdel(this.keys.control, ownerField(claim.role));
  }

  /** A newer attempt has claimed the role. (Not when the run's keys are gone: then the run is over.) */
  async isSuperseded(claim: Claim): Promise<boolean> {
    const holder = await this.redis.hget(this.keys.control, ownerField(claim.role));
    return holder !== null && holder !== claim.token;
  }

  /**
   * Shards whose jobs wait for a free slot of the train-shard queue (no worker has taken them): a
   * sync step does not wait out its timeout for them. Written by the coordinator when it changes.
   */
  async setUnstaffed(shards: number[]): Promise<void> {
    await exec(
      this.redis
        .pipeline()
        .hset(this.keys.control, 'unstaffed', shards.join(','))
        .pexpire(this.keys.control, this.ttlMs),
    );
  }

  /**
   * Records that a shard's job failed for good, durably (a restarted aggregator reads it back with
   * goneShards) and as a message (the running aggregator stops waiting for it at once).
   */
  async markGone(shard: number): Promise<void> {
    await this.redis
      .pipeline()
      .hset(this.keys.control, `gone:${shard}`, '1')
      .pexpire(this.keys.control, this.ttlMs)
      .exec();
    await this.push({ kind: 'gone', shard });
  }

  async goneShards(): Promise<number[]> {
    const fields = await this.redis.hkeys(this.keys.control);
    return fields
      .filter((f) => f.startsWith('gone:'))
      .map((f) => Number(f.slice(5)))
      .filter(Number.isInteger);
  }

  /** A coordinator (re)starting the run lifts an abort or end left by an earlier attempt. */
  async reopen(): Promise<void> {
    await this.redis.pipeline().hdel(this.keys.control, 'abort').del(this.keys.ended).exec();
  }

  async isEnded(): Promise<boolean> {
    return (await this.redis.exists(this.keys.ended)) === 1;
  }

  /** Deletes every key of the run and leaves a tiny `ended` marker (expiring) for late shard jobs. */
  async cleanup(markerTtlMs = 3600_000): Promise<number> {
    let removed = 0;
    const pattern = `${this.keys.base.replace(/[[\]*?\\]/g, (c) => `\\${c}`)}:*`;
    // One slot holds the whole run (hashtag), so a batch never crosses slots. A Cluster client has
    // no scanStream and its SCAN asks one node at random: each master is scanned.
    const nodes = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis];
    for (const node of nodes)
      for await (const batch of node.scanStream({ match: pattern, count: 500 }) as AsyncIterable<string[]>) {
        if (batch.length) removed += await this.redis.unlink(...batch);
      }
    await this.redis.set(this.keys.ended, '1', 'PX', markerTtlMs);
    return removed;
  }

  async close(): Promise<void> {
    const b = this.blocking;
    this.blocking = undefined;
    this.prefetched = undefined;
    // disconnect, not quit: a BLPOP in flight would hold quit's reply until it times out.
    b?.disconnect();
  }
}

const ownerField = (role: string): string => `owner:${role}`;

function parseShardList(text: string | null | undefined): number[] {
  return (text ?? '').split(',').filter(Boolean).map(Number).filter(Number.isInteger);
}

/** A connection of its own like `redis` (a Cluster's duplicate is another Cluster client). */
function duplicateOf(redis: RedisClient): RedisClient {
  return redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
}

async function exec(pipe: ReturnType<RedisClient['pipeline']>): Promise<void> {
  const replies = (await pipe.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
}

/** The channel of run `runId` as the aggregator and its shards open it, from their deps. */
export function openRunChannel(
  deps: Pick<ParamServerDeps, 'redis' | 'keyPrefix' | 'keyTtlMs' | 'chunkBytes'>,
  runId: string,
  shards: number,
): RunChannel {
  return new RunChannel(deps.redis, {
    runId,
    shards,
    prefix: deps.keyPrefix,
    ttlMs: deps.keyTtlMs,
    chunkBytes: deps.chunkBytes,
  });
}
