import { LRUCache } from 'lru-cache';
import { DEFAULT_TENANT, UnauthorizedError, type Principal } from '@tq/contracts';
import type { RedisClient } from '@tq/queue';
import { parseApiKey, sameHash, secretHash } from './api-key';
import { isUsable, type ApiKeyStore, type StoredApiKey } from './api-key-store';

export interface AuthenticatorOptions {
  /** TQ_ADMIN_KEY: accepted as an admin of the default tenant, compared in constant time, never stored. */
  adminKey?: string | undefined;
  /** AUTH_CACHE_SECONDS: how long a checked key's record is trusted without asking Redis. */
  cacheSeconds: number;
}

/** Every caller with AUTH=off (loopback only): an admin of the default tenant. */
export const AUTH_OFF: Principal = { keyId: 'auth-off', tenant: DEFAULT_TENANT, role: 'admin' };

/** The principal of TQ_ADMIN_KEY. */
export const CONFIG_ADMIN: Principal = { keyId: 'config-admin', tenant: DEFAULT_TENANT, role: 'admin' };

/** An unknown id is remembered as this, so a flood of forged keys costs Redis one read per id. */
const MISSING = 'missing' as const;

/**
 * Turns a bearer token into a Principal. A key's record is read from Redis once and then cached
 * (LRU, bounded, AUTH_CACHE_SECONDS); the secret is checked against the record's hash on every
 * request (a sha256, microseconds). Revocations arrive on a pub/sub channel and drop the cached
 * record at once; the TTL bounds a missed message.
 */
export class Authenticator {
  private readonly cache: LRUCache<string, StoredApiKey | typeof MISSING>;
  private readonly adminHash: Buffer | undefined;
  /** The configured admin key's id when it has the tq_<id>_<secret> form. */
  private readonly adminId: string | undefined;
  private readonly cacheEnabled: boolean;
  private subscriber: RedisClient | undefined;

  constructor(
    private readonly store: ApiKeyStore,
    options: AuthenticatorOptions,
  ) {
    this.adminHash = options.adminKey ? secretHash(options.adminKey) : undefined;
    this.adminId = options.adminKey ? parseApiKey(options.adminKey)?.id : undefined;
    // ttl 0 would mean "forever" to lru-cache: AUTH_CACHE_SECONDS=0 disables the cache instead.
    this.cache = new LRUCache({ max: 10_000, ttl: Math.max(1, options.cacheSeconds * 1000) });
    this.cacheEnabled = options.cacheSeconds > 0;
  }

  /**
   * Listens for revocations on `redis`'s server, on a duplicate connection (subscribing takes it
   * over). It subscribes each time that connection is ready: the API's clients have no offline
   * queue, so a SUBSCRIBE sent before the first connect would fail, and after a reconnect messages
   * may have been missed, so everything checked before is forgotten. `onError`: a failed subscribe.
   */
  listen(redis: RedisClient, onError: (err: unknown) => void): void {
    // The two overloads (Redis, Cluster) share no call signature: call it through one of them.
    const sub: RedisClient = (redis.duplicate as () => RedisClient).call(redis);
    this.subscriber = sub;
    sub.on('message', (_channel: string, id: string) => this.cache.delete(id));
    // Connection errors are the main client's to log (the same server); unhandled they would print.
    sub.on('error', () => {});
    sub.on('ready', () => {
      this.cache.clear();
      sub.subscribe(this.store.revocations).catch(onError);
    });
  }

  close(): void {
    this.subscriber?.disconnect();
  }

  /** The caller of `authorization` (an HTTP Authorization header's value), or UnauthorizedError. */
  async authenticate(authorization: string | undefined, now = new Date()): Promise<Principal> {
    const token = bearerToken(authorization);
    const parsed = parseApiKey(token);
    // A token naming another key's id cannot be the configured admin key: its hash is skipped
    // (ids are public, so skipping leaks nothing; one sha256 fewer per request, of about two).
    const maybeAdmin = !parsed || parsed.id === this.adminId;
    if (this.adminHash && maybeAdmin && sameHash(secretHash(token), this.adminHash)) return CONFIG_ADMIN;
    if (!parsed) throw unauthorized('is not an API key (tq_<id>_<secret>)');
    const record = await this.record(parsed.id);
    if (!record || !sameHash(secretHash(parsed.secret), Buffer.from(record.hash, 'hex')))
      throw unauthorized('unknown API key');
    if (record.revokedAt) throw unauthorized('this API key was revoked');
    if (!isUsable(record, now)) throw unauthorized('this API key has expired');
    return { keyId: record.id, tenant: record.tenant, role: record.role };
  }

  /** Drops a key from this replica's cache (the revoking replica does it before answering). */
  forget(id: string): void {
    this.cache.delete(id);
  }

  private async record(id: string): Promise<StoredApiKey | undefined> {
    const cached = this.cacheEnabled ? this.cache.get(id) : undefined;
    if (cached !== undefined) return cached === MISSING ? undefined : cached;
    const record = await this.store.get(id);
    if (this.cacheEnabled) this.cache.set(id, record ?? MISSING);
    return record;
  }
}

/** `Bearer <token>`, or the password of `Basic` (what a browser sends after a login prompt). */
export function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw unauthorized('missing; send "Authorization: Bearer <API key>"');
  const [scheme, value] = authorization.trim().split(/\s+/, 2);
  if (!value) throw unauthorized('expected "Bearer <API key>"');
  if (/^bearer$/i.test(scheme!)) return value;
  if (/^basic$/i.test(scheme!)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) return decoded.slice(colon + 1);
  }
  throw unauthorized('expected "Bearer <API key>" (or Basic with the key as the password)');
}

const unauthorized = (reason: string) => new UnauthorizedError('Authorization', reason);
