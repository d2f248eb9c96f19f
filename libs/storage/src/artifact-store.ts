import { NotFoundError, modelNameSchema, tenantSchema, type ModelRef } from '@tq/contracts';
import { BlobNotFoundError } from './blob/blob-errors';
import { blobKey, blobPrefix } from './blob/blob-key';
import type { BlobServe, BlobStore, ServeOptions } from './blob/blob-store';
import { LocalBlobStore } from './blob/local-blob-store';

export { safeSegment } from './blob/blob-key';

/** Every tenant's objects are under "tenants/<tenant>/". */
const TENANTS = 'tenants';

/**
 * Tenants' prefixes already built. A serve replica makes two tenant views a predict, and building
 * a prefix (the tenant's schema and the key's checks) took 0.63 µs against 0.05 µs from the map
 * (a loop of 10^6 calls), about 3% of a small model's predict under load (a CPU profile of the
 * replica under wrk). Only names that passed the checks are kept; cleared when full.
 */
const prefixes = new Map<string, string>();
const MAX_KEPT_PREFIXES = 4096;

/** "tenants/<tenant>/": where a tenant's models, datasets, outputs, inputs and checkpoints are. */
export function tenantPrefix(tenant: string): string {
  const kept = prefixes.get(tenant);
  if (kept !== undefined) return kept;
  const prefix = blobPrefix(TENANTS, tenantSchema.parse(tenant));
  if (prefixes.size >= MAX_KEPT_PREFIXES) prefixes.clear();
  prefixes.set(tenant, prefix);
  return prefix;
}

/**
 * Where the system keeps its artifacts, as keys in one blob store (a local folder or S3): every
 * key is built here from validated parts, so no caller can name anything outside the layout.
 * Layout, under a tenant's view (forTenant): tenants/<tenant>/ then models/<name>/<version>/...,
 * datasets/<id>/..., checkpoints/<key>/<file>, outputs/<jobId>.<ext> (or outputs/<jobId>/... for a
 * sharded job), inputs/<jobId>.f32. System-wide objects (secrets/<name>, system/store-id) stay
 * outside tenants. The root view (no tenant) builds the same keys without the tenant prefix: the
 * lib tests and tools use it.
 */
export class ArtifactStore {
  readonly blobs: BlobStore;
  /** The tenant this view is scoped to; undefined for the root view. */
  readonly tenant: string | undefined;
  /** "" for the root view, "tenants/<tenant>/" for a tenant's: put before every key this view builds. */
  readonly root: string;

  /** A blob store, or a folder (a LocalBlobStore there: tests and tools). */
  constructor(blobs: BlobStore | string, tenant?: string) {
    this.blobs = typeof blobs === 'string' ? new LocalBlobStore(blobs) : blobs;
    this.tenant = tenant;
    this.root = tenant === undefined ? '' : tenantPrefix(tenant);
  }

  /**
   * The same store seen by one tenant: every key it builds is under tenants/<tenant>/. A view, not
   * a copy (it shares the blob store), so callers make one per job or request. A view's view is
   * the inner tenant's (never tenants/a/tenants/b/).
   */
  forTenant(tenant: string): ArtifactStore {
    return tenant === this.tenant ? this : new ArtifactStore(this.blobs, tenant);
  }

  /**
   * Tenants that hold objects, sorted (admin listings, retention): the folders under tenants/, one
   * delimited listing (on S3 a request per 1,000 tenants, not per 1,000 objects). On local disk a
   * tenant whose objects were all deleted may still be named; its listings are empty.
   */
  async tenants(): Promise<string[]> {
    const names = await this.blobs.folders(blobPrefix(TENANTS));
    return names.filter((t) => tenantSchema.safeParse(t).success).sort();
  }

  /** A key this view built, without its tenant prefix ("models/<name>/..."): what listings parse. */
  relative(key: string): string {
    return key.startsWith(this.root) ? key.slice(this.root.length) : key;
  }

  private key(...segments: string[]): string {
    return this.root + blobKey(...segments);
  }
  private prefix(...segments: string[]): string {
    return this.root + blobPrefix(...segments);
  }

  /** "models/" or "models/<name>/". */
  modelsPrefix(name?: string): string {
    return name === undefined ? this.prefix('models') : this.prefix('models', modelNameSchema.parse(name));
  }
  /** A key under version `ref`: "models/<name>/<version>/<...parts>". */
  modelKey(ref: ModelRef, ...parts: string[]): string {
    return this.key('models', modelNameSchema.parse(ref.name), String(Math.trunc(ref.version)), ...parts);
  }
  datasetsPrefix(): string {
    return this.prefix('datasets');
  }
  datasetPrefix(id: string): string {
    return this.prefix('datasets', id);
  }
  datasetKey(id: string, file: string): string {
    return this.key('datasets', id, file);
  }
  checkpointsPrefix(): string {
    return this.prefix('checkpoints');
  }
  /** Every object of checkpoint `key` (a job's, a run's) is under this prefix. */
  checkpointPrefix(key: string): string {
    return this.prefix('checkpoints', key);
  }
  checkpointKey(key: string, file: string): string {
    return this.key('checkpoints', key, file);
  }
  outputsPrefix(): string {
    return this.prefix('outputs');
  }
  outputKey(jobId: string, ext = 'jsonl'): string {
    return this.key('outputs', `${jobId}.${ext}`);
  }
  /** A sharded job's parts: "outputs/<jobId>/...". */
  outputPartsPrefix(jobId: string): string {
    return this.prefix('outputs', jobId);
  }
  outputPartKey(jobId: string, file: string): string {
    return this.key('outputs', jobId, file);
  }
  inputsPrefix(): string {
    return this.prefix('inputs');
  }
  inputKey(jobId: string): string {
    return this.key('inputs', `${jobId}.f32`);
  }

  /**
   * A finished job's output as the API answers it: a stream, or (S3 with `redirectSeconds`) a
   * presigned URL. `ext`: another object of the job (a table infer job's `errors.jsonl`).
   */
  async serveOutput(jobId: string, opts: ServeOptions = {}, ext = 'jsonl'): Promise<BlobServe> {
    try {
      return await this.blobs.serve(this.outputKey(jobId, ext), opts);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new NotFoundError('id', `job ${jobId} has no output`);
      throw err;
    }
  }

  /**
   * Stores a job's output (e.g. JSONL chunks) as one object, in bounded memory: readers see the
   * whole of it or none. On any failure (the source throws, a cancel, a full disk) nothing is
   * stored. `beforeCommit` runs once every byte is written, before the object becomes visible (a
   * job's fence: an attempt that lost its job throws there and leaves the output to the live one).
   */
  async writeOutput(jobId: string, chunks: AsyncIterable<string>, opts: WriteOutputOptions = {}): Promise<void> {
    await this.blobs.put(this.outputKey(jobId, opts.ext), chunks, {
      ...(opts.beforeCommit ? { beforeCommit: opts.beforeCommit } : {}),
    });
  }
}

export interface WriteOutputOptions {
  /** The object's extension (default jsonl). */
  ext?: string;
  /** Runs once the bytes are written, right before they become visible; a throw leaves nothing behind. */
  beforeCommit?: () => Promise<void>;
}
