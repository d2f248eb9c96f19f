import { LRUCache } from 'lru-cache';
import type { ModelRef, ModelVersionMeta, PreprocessingSpec } from '@tq/contracts';
import { modelLoadHandler, type ModelRegistry } from '@tq/storage';
import {
  NETWORK_INT8_ARTIFACT,
  NETWORK_ONNX_ARTIFACT,
  ONNX_ARTIFACT,
  ONNX_INT8_ARTIFACT,
  PREPROCESSING_ARTIFACT,
  TFJS_ARTIFACT,
} from './artifact-names';
import { FeatureCountError } from './errors';
import { PreprocessingCache } from './preprocessing-cache';
import { resolveExecutionProviders } from './execution-providers';
import { loadOrtRunner, loadTfjsRunner, type ModelRunner } from './model-runners';

export interface InferenceEngineOptions {
  registry: ModelRegistry;
  /** Loaded models (onnxruntime sessions or tfjs models) kept per process; the least recently used is released. */
  cacheSize: number;
  /**
   * And at most this many bytes of them, counted as their served artifacts' stored sizes (an ONNX
   * file; a tfjs model's JSON and weights): the least recently used are released beyond it. One
   * model larger than the budget is kept alone. Unset: no byte bound.
   */
  cacheBytes?: number;
  /** onnxruntime execution providers, best first; default resolveExecutionProviders() (cuda when installed, cpu). */
  executionProviders?: string[];
  /** Threads per onnxruntime session; 0 (default) lets onnxruntime use one per core. */
  intraOpNumThreads?: number;
  /** onnxruntime's pool threads spin between runs (OrtSessionOptions.allowSpinning; unset: onnxruntime's default, spin). */
  allowSpinning?: boolean;
  /** Use a version's model.int8.onnx over its model.onnx when it has both (default true). */
  preferInt8?: boolean;
  /** Rows per batch when predict is not told (default 1024). */
  defaultBatchSize?: number;
  /**
   * Yield the event loop between batches once this many ms of compute have passed since the last
   * yield (default 5; 0 yields after every batch). Enough for BullMQ lock renewal and HTTP, without
   * paying an event-loop turn per millisecond-long int8 batch.
   */
  yieldIntervalMs?: number;
}

export interface PredictOptions {
  batchSize?: number;
}
export interface PredictResult {
  scores: Float32Array;
  outputSize: number;
  engine: 'onnxruntime' | 'tfjs';
}

interface Entry {
  artifact: string;
  /** The served artifact's stored bytes (the cache's size of this entry). */
  bytes: number;
  runner: Promise<ModelRunner>;
  users: number;
  evicted: boolean;
}

/**
 * Batch inference for registry versions: onnxruntime-node when the version has an ONNX export, tfjs
 * otherwise. Loaded models are cached per process (LRU) and reused across jobs; an evicted one is
 * released once no predict is using it. Batches yield the event loop (every yieldIntervalMs) so
 * BullMQ can renew job locks while a long predict runs.
 */
export class InferenceEngine {
  private readonly registry: ModelRegistry;
  private readonly cache: LRUCache<string, Entry>;
  private readonly specs: PreprocessingCache;
  private readonly releases: Set<Promise<void>>;
  private readonly releaseErrors: unknown[];
  private readonly providers: string[];
  private readonly threads: number;
  private readonly preferInt8: boolean;
  private readonly defaultBatchSize: number;
  private readonly yieldIntervalMs: number;
  /** Shared by an engine and its tenant views: closing one closes them all. */
  private readonly state: { closed: boolean };
  /** Loads and releases so far (observability and tests). */
  readonly stats: { loads: number; releases: number };

  /** `shareWith`: forTenant's, an engine whose loaded models, caches and counters this one shares. */
  constructor(
    private readonly opts: InferenceEngineOptions,
    shareWith?: InferenceEngine,
  ) {
    this.registry = opts.registry;
    const max = opts.cacheSize;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`cache size must be a positive integer, got ${max}`);
    const maxBytes = opts.cacheBytes;
    if (maxBytes !== undefined && !(Number.isInteger(maxBytes) && maxBytes >= 1))
      throw new RangeError(`cache bytes must be a positive integer, got ${maxBytes}`);
    // dispose runs for every entry pushed out, deleted or cleared: the one place models are released.
    this.cache =
      shareWith?.cache ??
      new LRUCache<string, Entry>({
        max,
        dispose: (entry) => this.evict(entry),
        // Capped at the budget, so a model larger than it still stays (alone) instead of reloading per predict.
        ...(maxBytes
          ? { maxSize: maxBytes, sizeCalculation: (e: Entry) => Math.max(1, Math.min(e.bytes, maxBytes)) }
          : {}),
      });
    this.specs = shareWith?.specs ?? new PreprocessingCache(opts.registry, max);
    this.releases = shareWith?.releases ?? new Set();
    this.releaseErrors = shareWith?.releaseErrors ?? [];
    this.state = shareWith?.state ?? { closed: false };
    this.stats = shareWith?.stats ?? { loads: 0, releases: 0 };
    this.providers = shareWith?.providers ?? opts.executionProviders ?? resolveExecutionProviders();
    this.threads = opts.intraOpNumThreads ?? 0;
    this.preferInt8 = opts.preferInt8 ?? true;
    this.defaultBatchSize = opts.defaultBatchSize ?? 1024;
    this.yieldIntervalMs = opts.yieldIntervalMs ?? 5;
  }

  /**
   * The engine seen by one tenant: refs resolve in that tenant's registry, and loaded models are
   * cached under the tenant's prefix, so two tenants' "digits v1" are two models. The cache (its
   * size bound included) is shared with this engine: one process, one budget of loaded models.
   */
  forTenant(tenant: string): InferenceEngine {
    if (tenant === this.registry.tenant) return this;
    return new InferenceEngine({ ...this.opts, registry: this.registry.forTenant(tenant) }, this);
  }

  /** Cache keys: the registry's tenant prefix ("" at the root) and "name/version". */
  private keyOf(ref: ModelRef): string {
    return `${this.registry.store.root}${ref.name}/${ref.version}`;
  }

  get executionProviders(): readonly string[] {
    return this.providers;
  }

  async predict(
    ref: ModelRef,
    rows: Float32Array,
    rowCount: number,
    opts: PredictOptions = {},
  ): Promise<PredictResult> {
    if (this.state.closed) throw new Error('the inference engine is closed');
    if (!Number.isInteger(rowCount) || rowCount < 0)
      throw new RangeError(`rowCount must be a non-negative integer, got ${rowCount}`);
    const batchSize = opts.batchSize ?? this.defaultBatchSize;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
    const meta = await this.registry.getVersion(ref);
    const f = meta.featureCount;
    if (rows.length !== rowCount * f) throw new FeatureCountError(f, rowCount, rows.length);

    const entry = this.acquire(ref, meta);
    try {
      const runner = await entry.runner;
      const scores = new Float32Array(rowCount * runner.outputSize);
      let lastYield = performance.now();
      for (let start = 0; start < rowCount; start += batchSize) {
        if (start > 0 && performance.now() - lastYield >= this.yieldIntervalMs) {
          await yieldToEventLoop();
          lastYield = performance.now();
        }
        const n = Math.min(batchSize, rowCount - start);
        const out = await runner.run(rows.subarray(start * f, (start + n) * f), n);
        if (out.length !== n * runner.outputSize)
          throw new Error(
            `${ref.name} v${ref.version}: the model returned ${out.length} scores for ${n} rows of ${runner.outputSize}`,
          );
        scores.set(out, start * runner.outputSize);
      }
      return { scores, outputSize: runner.outputSize, engine: runner.engine };
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) this.release(entry);
    }
  }

  /**
   * The version's fitted preprocessing (preprocessing.json) when it was trained on a table, else
   * undefined. Cached; a failed read is not.
   */
  preprocessing(ref: ModelRef, meta?: ModelVersionMeta): Promise<PreprocessingSpec | undefined> {
    return this.specs.get(ref, meta, this.registry);
  }

  /** Keys ("name/version", after "tenants/<tenant>/" for a tenant's) of the loaded models, least recently used first. */
  cached(): string[] {
    return [...this.cache.rkeys()];
  }

  /** Releases every loaded model (throws if any release failed, here or at an earlier eviction); predict fails afterwards. */
  async close(): Promise<void> {
    this.state.closed = true;
    this.cache.clear();
    this.specs.clear();
    while (this.releases.size > 0) await Promise.all([...this.releases]);
    if (this.releaseErrors.length > 0)
      throw new AggregateError(this.releaseErrors.splice(0), 'releasing inference models failed');
  }

  /** The cached runner for the version's best artifact (reloaded if a better one appeared since, e.g. model.onnx attached later). */
  private acquire(ref: ModelRef, meta: ModelVersionMeta): Entry {
    const key = this.keyOf(ref);
    const artifact = this.bestArtifact(meta);
    let entry = this.cache.get(key);
    if (entry && entry.artifact !== artifact) {
      this.cache.delete(key);
      entry = undefined;
    }
    if (!entry) {
      const created: Entry = {
        artifact,
        bytes: servedBytes(meta, artifact),
        runner: this.load(ref, artifact, meta.featureCount),
        users: 0,
        evicted: false,
      };
      // A failed load is not cached: the next predict tries again.
      created.runner.catch(() => {
        if (this.cache.peek(key) === created) this.cache.delete(key);
      });
      this.cache.set(key, created);
      entry = created;
    }
    entry.users++;
    return entry;
  }

  /** servedArtifact of the version's artifacts. */
  private bestArtifact(meta: ModelVersionMeta): string {
    return servedArtifact(Object.keys(meta.artifacts), meta.inputColumns !== undefined, this.preferInt8);
  }

  private async load(ref: ModelRef, artifact: string, featureCount: number): Promise<ModelRunner> {
    this.stats.loads++;
    if (artifact === TFJS_ARTIFACT) return loadTfjsRunner(modelLoadHandler(this.registry, ref));
    return loadOrtRunner(await this.registry.readArtifact(ref, artifact), featureCount, {
      executionProviders: this.providers,
      intraOpNumThreads: this.threads,
      ...(this.opts.allowSpinning === undefined ? {} : { allowSpinning: this.opts.allowSpinning }),
    });
  }

  private evict(entry: Entry): void {
    entry.evicted = true;
    if (entry.users === 0) this.release(entry);
  }

  private release(entry: Entry): void {
    const done = entry.runner
      .then(
        async (runner) => {
          await runner.release();
          this.stats.releases++;
        },
        () => undefined, // the load failed: nothing was allocated, and its error went to the predict that awaited it
      )
      .catch((err: unknown) => {
        this.releaseErrors.push(err);
      }) // kept for close(): an eviction has no caller to throw to
      .finally(() => this.releases.delete(done));
    this.releases.add(done);
  }
}

/**
 * The artifact the engine serves among `files`: int8 over float ONNX (when preferred) over tfjs. A
 * table model's model*.onnx take raw columns (the download, see artifact-names.ts): the engine runs
 * its network*.onnx, which take features. Exported so that a version about to be registered is
 * timed on the artifact it will be served from.
 */
export function servedArtifact(files: readonly string[], tableColumns: boolean, preferInt8 = true): string {
  const has = (file: string): boolean => files.includes(file);
  const table = tableColumns || has(PREPROCESSING_ARTIFACT) || has(NETWORK_ONNX_ARTIFACT);
  const [int8, float] = table ? [NETWORK_INT8_ARTIFACT, NETWORK_ONNX_ARTIFACT] : [ONNX_INT8_ARTIFACT, ONNX_ARTIFACT];
  if (preferInt8 && has(int8)) return int8;
  return has(float) ? float : TFJS_ARTIFACT;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The stored bytes of what serving `artifact` loads: the file, or a tfjs model's JSON and its weight files. */
function servedBytes(meta: ModelVersionMeta, artifact: string): number {
  if (artifact !== TFJS_ARTIFACT) return meta.artifacts[artifact] ?? 0;
  let bytes = meta.artifacts[TFJS_ARTIFACT] ?? 0;
  for (const [file, size] of Object.entries(meta.artifacts)) if (file.endsWith('.bin')) bytes += size;
  return bytes;
}
