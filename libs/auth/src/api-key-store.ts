import type { ApiKeyView, Role } from '@tq/contracts';
import type { RedisClient } from '@tq/queue';
import { keyPrefix, newApiKey, secretHash } from './api-key';

/** What Redis holds for a key: its view and the sha256 of its secret (hex). */
export interface StoredApiKey extends ApiKeyView {
  hash: string;
}

export interface NewApiKey {
  name: string;
  tenant: string;
  role: Role;
  expiresAt?: Date | undefined;
}

/**
 * The API keys, in Redis under the queue prefix (a cluster's hash tag keeps them in one slot):
 * one string per key (`<prefix>:auth:key:<id>`, JSON) and a set of every id. A revoke keeps the
 * record (listed as revoked, for the audit trail) and tells every API replica at once on a
 * pub/sub channel, so their caches drop it.
 */
export class ApiKeyStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
  ) {}

  get revocations(): string {
    return `${this.prefix}:auth:revoked`;
  }

  private keyOf(id: string): string {
    return `${this.prefix}:auth:key:${id}`;
  }

  private get ids(): string {
    return `${this.prefix}:auth:keys`;
  }

  /** Creates a key; the returned `key` is the only copy of its secret. */
  async create(spec: NewApiKey, now = new Date()): Promise<{ record: StoredApiKey; key: string }> {
    const { id, secret, key } = newApiKey();
    const record: StoredApiKey = {
      id,
      prefix: keyPrefix(id),
      name: spec.name,
      tenant: spec.tenant,
      role: spec.role,
      createdAt: now.toISOString(),
      ...(spec.expiresAt ? { expiresAt: spec.expiresAt.toISOString() } : {}),
      hash: secretHash(secret).toString('hex'),
    };
    // NX: a 48-bit id collision (about one in 2^24 after 2^12 keys) fails instead of overwriting.
    const set = await this.redis.set(this.keyOf(id), JSON.stringify(record), 'NX');
    if (set !== 'OK') return this.create(spec, now);
    await this.redis.sadd(this.ids, id);
    return { record, key };
  }

  async get(id: string): Promise<StoredApiKey | undefined> {
    const text = await this.redis.get(this.keyOf(id));
    return text === null ? undefined : (JSON.parse(text) as StoredApiKey);
  }

  /** Every key, newest first. */
  async list(): Promise<StoredApiKey[]> {
    const ids = await this.redis.smembers(this.ids);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records
      .filter((r): r is StoredApiKey => r !== undefined)
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  /** Marks the key revoked and tells every replica; false when there is no such key. */
  async revoke(id: string, now = new Date()): Promise<StoredApiKey | undefined> {
    const record = await this.get(id);
    if (!record) return undefined;
    const revoked = { ...record, revokedAt: record.revokedAt ?? now.toISOString() };
    await this.redis.set(this.keyOf(id), JSON.stringify(revoked));
    await this.redis.publish(this.revocations, id);
    return revoked;
  }

  /** Whether a usable (not revoked, not expired) admin key is stored. */
  async hasActiveAdmin(now = new Date()): Promise<boolean> {
    return (await this.list()).some((k) => k.role === 'admin' && isUsable(k, now));
  }
}

/** Not revoked and not past its expiry. */
export function isUsable(key: ApiKeyView, now: Date): boolean {
  return !key.revokedAt && !(key.expiresAt && Date.parse(key.expiresAt) <= now.getTime());
}

/** The listed view of a stored key: without its hash. */
export function viewOf(key: StoredApiKey): ApiKeyView {
  const { hash: _hash, ...view } = key;
  return view;
}
