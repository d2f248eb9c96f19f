import type { ModelVersionMeta, PredictInput, PredictResponse } from '@tq/contracts';
import { answersOf, requestFeatures } from '@tq/jobs';
import type { InferenceEngine } from '@tq/ml';
import { DynamicBatcher, type BatcherObserver } from './dynamic-batcher';

export interface BatchSettings {
  maxBatchSize: number;
  maxDelayMs: number;
  maxQueueRows: number;
  timeoutMs: number;
  retryAfterSeconds?: number;
  /**
   * Batchers kept (one per tenant and version asked for); beyond it the least recently used idle
   * ones are closed. Default 256. A batcher holds no model (the engine's cache does, within its own
   * budget): this bounds the bookkeeping of a replica that sees many versions over its life.
   */
  maxBatchers?: number;
}

const DEFAULT_MAX_BATCHERS = 256;

/** Per model version observers (labels), so /metrics can tell versions apart. */
export type ObserverFor = (tenant: string, name: string, version: number) => BatcherObserver | undefined;

/**
 * predictVersion (@tq/jobs predict.ts) through a DynamicBatcher per tenant and model version: the
 * body's features are computed per request (preprocessing, checks naming the field), then wait for
 * their batch; the answers are decoded per request again. Two tenants' "digits v1" are two models,
 * so two batchers: rows of different tenants never share an engine call.
 */
export class BatchedPredictor {
  private readonly batchers = new Map<string, DynamicBatcher>();

  constructor(
    private readonly engine: InferenceEngine,
    private readonly settings: BatchSettings,
    private readonly observerFor?: ObserverFor,
  ) {}

  async predict(tenant: string, meta: ModelVersionMeta, body: PredictInput): Promise<PredictResponse> {
    const ref = { name: meta.name, version: meta.version };
    const engine = this.engine.forTenant(tenant);
    const spec = await engine.preprocessing(ref, meta);
    const input = requestFeatures(body, meta, spec);
    if (input.rows === 0) return { model: ref, engine: 'onnxruntime', predictions: [] };
    const out = await this.batcherFor(tenant, meta, engine).submit(input.features, input.rows);
    return {
      model: ref,
      engine: out.engine ?? 'onnxruntime',
      predictions: answersOf(out.scores, out.outputSize, meta, spec),
      ...(input.unknownCategories ? { unknownCategories: input.unknownCategories } : {}),
    };
  }

  /** Batchers kept now (at most maxBatchers, unless more are busy at once). */
  get batcherCount(): number {
    return this.batchers.size;
  }

  /** Rows waiting over every batcher (for a replica's heartbeat / load figure). */
  get waitingRows(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.waitingRows;
    return n;
  }

  close(): void {
    for (const b of this.batchers.values()) b.close();
    this.batchers.clear();
  }

  private batcherFor(tenant: string, meta: ModelVersionMeta, engine: InferenceEngine): DynamicBatcher {
    const key = JSON.stringify([tenant, meta.name, meta.version]);
    let batcher = this.batchers.get(key);
    // The map's order is the order of last use: the one used now goes last.
    if (batcher) {
      this.batchers.delete(key);
      this.batchers.set(key, batcher);
    } else {
      const ref = { name: meta.name, version: meta.version };
      batcher = new DynamicBatcher(
        // One engine call for the whole batch: the engine's own split would undo the batching.
        (features, rows) => engine.predict(ref, features, rows, { batchSize: Math.max(rows, 1) }),
        {
          ...this.settings,
          featureCount: meta.featureCount,
          label: `${meta.name} v${meta.version}`,
          ...(this.observerFor ? { observer: this.observerFor(tenant, meta.name, meta.version) ?? {} } : {}),
        },
      );
      this.batchers.set(key, batcher);
      this.evictIdle(key);
    }
    return batcher;
  }

  /** Closes the least recently used idle batchers (not `keep`'s) while more than maxBatchers are kept. */
  private evictIdle(keep: string): void {
    const max = this.settings.maxBatchers ?? DEFAULT_MAX_BATCHERS;
    for (const [key, batcher] of this.batchers) {
      if (this.batchers.size <= max) return;
      if (key === keep || !batcher.idle) continue;
      batcher.close();
      this.batchers.delete(key);
    }
  }
}
