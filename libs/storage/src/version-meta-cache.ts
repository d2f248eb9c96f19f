import { LRUCache } from 'lru-cache';
import type { ModelVersionMeta } from '@tq/contracts';

/**
 * Version metadata the registry keeps in memory, so a predict does not read and parse
 * metadata.json from the blob store (twice: route and engine) on every request. A committed
 * version changes only through the registry (putArtifact adds model.onnx after the commit,
 * removeModel deletes a model), which calls changed(): an implementation drops the entries here
 * and tells every other process (RedisVersionMetaCache in @tq/queue: pub/sub). An abstract class
 * so that it is also the Nest token StorageModule injects (optional: no cache without one).
 */
export abstract class VersionMetaCache {
  /** A cached version; undefined when not cached (or while invalidations might be missed). */
  abstract get(key: string): ModelVersionMeta | undefined;
  /** Caches what was read at `generation()` unless an invalidation arrived since. */
  abstract set(key: string, meta: ModelVersionMeta, generation: number): void;
  /** Counts invalidations: a read that started before one must not be cached. */
  abstract generation(): number;
  /** Entries under `keyPrefix` ("<root><name>/<version>" or "<root><name>/") changed: drop them everywhere. */
  abstract changed(keyPrefix: string): Promise<void>;
}

/** The process-local part: an LRU of at most `max` versions, and the invalidation count. */
export class LocalVersionMetas {
  private readonly lru: LRUCache<string, ModelVersionMeta>;
  private gen = 0;

  constructor(max: number) {
    this.lru = new LRUCache({ max });
  }

  get(key: string): ModelVersionMeta | undefined {
    return this.lru.get(key);
  }

  set(key: string, meta: ModelVersionMeta, generation: number): void {
    if (generation === this.gen) this.lru.set(key, meta);
  }

  generation(): number {
    return this.gen;
  }

  /** Drops every entry under `keyPrefix` ("" drops all). */
  forget(keyPrefix: string): void {
    this.gen++;
    for (const key of [...this.lru.keys()]) if (key.startsWith(keyPrefix)) this.lru.delete(key);
  }

  get size(): number {
    return this.lru.size;
  }
}

/**
 * A VersionMetaCache of this process alone: right where no other process changes the versions it
 * reads (a bench, a single process); RedisVersionMetaCache tells the others.
 */
export class ProcessVersionMetaCache extends VersionMetaCache {
  private readonly local: LocalVersionMetas;

  constructor(max = 1000) {
    super();
    this.local = new LocalVersionMetas(max);
  }

  get(key: string): ModelVersionMeta | undefined {
    return this.local.get(key);
  }

  set(key: string, meta: ModelVersionMeta, generation: number): void {
    this.local.set(key, meta, generation);
  }

  generation(): number {
    return this.local.generation();
  }

  changed(keyPrefix: string): Promise<void> {
    this.local.forget(keyPrefix);
    return Promise.resolve();
  }
}
