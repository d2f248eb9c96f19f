import { LRUCache } from 'lru-cache';
import { preprocessingSpecSchema, type ModelRef, type ModelVersionMeta, type PreprocessingSpec } from '@tq/contracts';
import type { ModelRegistry } from '@tq/storage';
import { PREPROCESSING_ARTIFACT } from './artifact-names';

/**
 * Parsed preprocessing.json per version, read through the registry and kept beside the engine's
 * models (a version's files never change once registered, so nothing goes stale). A failed read
 * is not cached: the next request tries again.
 */
export class PreprocessingCache {
  private readonly specs: LRUCache<string, Promise<PreprocessingSpec | undefined>>;

  constructor(
    private readonly registry: ModelRegistry,
    max: number,
  ) {
    this.specs = new LRUCache({ max });
  }

  /**
   * The version's fitted preprocessing when it was trained on a table, else undefined. `registry`:
   * a tenant's view of the registry (cached under its tenant prefix), by default the one given.
   */
  async get(
    ref: ModelRef,
    meta?: ModelVersionMeta,
    registry: ModelRegistry = this.registry,
  ): Promise<PreprocessingSpec | undefined> {
    const known = meta ?? (await registry.getVersion(ref));
    if (!Object.hasOwn(known.artifacts, PREPROCESSING_ARTIFACT)) return undefined;
    const key = `${registry.store.root}${ref.name}/${ref.version}`;
    const cached = this.specs.get(key);
    if (cached) return cached;
    const loading = readPreprocessing(registry, ref, known);
    loading.catch(() => {
      if (this.specs.peek(key) === loading) this.specs.delete(key);
    });
    this.specs.set(key, loading);
    return loading;
  }

  clear(): void {
    this.specs.clear();
  }
}

/** A version's preprocessing.json, parsed; undefined when it has none (not trained on a table). */
export async function readPreprocessing(
  registry: Pick<ModelRegistry, 'getVersion' | 'readArtifact'>,
  ref: ModelRef,
  meta?: ModelVersionMeta,
): Promise<PreprocessingSpec | undefined> {
  const known = meta ?? (await registry.getVersion(ref));
  if (!Object.hasOwn(known.artifacts, PREPROCESSING_ARTIFACT)) return undefined;
  const bytes = await registry.readArtifact(ref, PREPROCESSING_ARTIFACT);
  try {
    return preprocessingSpecSchema.parse(JSON.parse(bytes.toString('utf8')));
  } catch (err) {
    throw new Error(`${ref.name} v${ref.version} has a corrupt ${PREPROCESSING_ARTIFACT}`, { cause: err });
  }
}
