import { Injectable } from '@nestjs/common';
import { aliasTargetSchema, type AliasTarget, type AliasView } from '@tq/contracts';
import { RedisClientHolder } from './redis.provider';

/** A stored alias: its target and when it was last set. */
interface StoredAlias extends AliasTarget {
  updatedAt: string;
}

/**
 * Aliases of a tenant's model, in Redis: one hash per (tenant, model), a field per alias holding
 * its target as JSON. Redis rather than the blob store because a switch must be atomic and seen
 * by every API and serve replica at once: an HSET replaces the whole target in one command, and
 * every predict reads it (one HGET, well under a millisecond), so there is no cache to go stale
 * and no pub/sub to miss. The registry's versions stay in the blob store; an alias only names one.
 */
@Injectable()
export class AliasStore {
  constructor(private readonly redis: RedisClientHolder) {}

  private key(tenant: string, name: string): string {
    return `${this.redis.prefix}:tq-aliases:${tenant}:${name}`;
  }

  async set(tenant: string, name: string, alias: string, target: AliasTarget): Promise<AliasView> {
    const stored: StoredAlias = { ...target, updatedAt: new Date().toISOString() };
    await this.redis.client.hset(this.key(tenant, name), alias, JSON.stringify(stored));
    return viewOf(name, alias, stored);
  }

  /** The alias's target; undefined when the model has no such alias (in this tenant). */
  async get(tenant: string, name: string, alias: string): Promise<AliasTarget | undefined> {
    const raw = await this.redis.client.hget(this.key(tenant, name), alias);
    return raw === null ? undefined : parse(raw);
  }

  async list(tenant: string, name: string): Promise<AliasView[]> {
    const all = await this.redis.client.hgetall(this.key(tenant, name));
    return Object.entries(all)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([alias, raw]) => viewOf(name, alias, parse(raw)));
  }

  /** The removed alias's view; undefined when there was none. */
  async delete(tenant: string, name: string, alias: string): Promise<AliasView | undefined> {
    const key = this.key(tenant, name);
    // One transaction: the view answered is the one removed, even against a concurrent PUT.
    const res = await this.redis.client.multi().hget(key, alias).hdel(key, alias).exec();
    const raw = res?.[0]?.[1];
    if (res?.[0]?.[0]) throw res[0][0];
    return typeof raw === 'string' ? viewOf(name, alias, parse(raw)) : undefined;
  }
}

function parse(raw: string): StoredAlias {
  const { updatedAt, ...target } = JSON.parse(raw) as { updatedAt?: unknown };
  return { ...aliasTargetSchema.parse(target), updatedAt: String(updatedAt) };
}

function viewOf(model: string, alias: string, stored: StoredAlias): AliasView {
  return { alias, model, ...stored };
}
