import { randomBytes } from 'node:crypto';
import {
  NotFoundError,
  modelVersionMetaSchema,
  type JobFence,
  type ModelRef,
  type ModelVersionMeta,
} from '@tq/contracts';
import { ArtifactStore } from './artifact-store';
import { BlobExistsError, BlobNotFoundError } from './blob/blob-errors';
import type { BlobServe, ServeOptions } from './blob/blob-store';
import type { VersionMetaCache } from './version-meta-cache';
import { decodeArtifact, encodeArtifact, type StoredEncoding } from './artifact-encoding';

export const METADATA_JSON = 'metadata.json';
/** A version's number is taken by creating this (create-only), before any artifact is written. */
const CLAIM_JSON = 'claim.json';
/**
 * Versions tried past the latest one before register gives up: each taken one means another writer
 * won that number, so this bounds the loop at far more concurrent registrations than a deployment has.
 */
const MAX_VERSION_TRIES = 1000;
const ARTIFACT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** What a writer gives; `task` defaults to classification. */
export type NewVersionMeta = Omit<
  ModelVersionMeta,
  'name' | 'version' | 'createdAt' | 'artifacts' | 'task' | 'artifactSet'
> &
  Partial<Pick<ModelVersionMeta, 'task'>>;

/** A stored artifact to answer with; `encoding` when it is stored compressed (the stream and the bucket object are). */
export type ServedArtifact = BlobServe & { encoding?: 'gzip'; decodedSize?: number };

/** What register's callback writes a version's artifacts through (model.json, weights.bin, ...). */
export interface VersionWriter {
  put(file: string, data: string | Uint8Array): Promise<void>;
}

export class ArtifactNotFoundError extends NotFoundError {
  constructor(
    readonly ref: ModelRef,
    readonly file: string,
    field = 'file',
  ) {
    super(field, `version ${ref.version} of "${ref.name}" has no artifact "${file}"`);
  }
}

export class ModelNotFoundError extends NotFoundError {
  constructor(
    readonly ref: { name: string; version?: number },
    field = 'model',
  ) {
    super(
      field,
      ref.version === undefined
        ? `model "${ref.name}" does not exist`
        : `model "${ref.name}" has no version ${ref.version}`,
    );
  }
}

interface Claim {
  jobId: string | null;
}

/**
 * Versions, metrics and lineage of models, kept in the blob store alone (metadata.json per
 * version), so the registry is rebuilt by listing it. A version's number is taken by creating its
 * claim.json (create-only: of two writers exactly one wins it); its artifacts go under a set of
 * their own; creating metadata.json commits it. Readers see a version only once it is committed,
 * and never half of one; a writer that died leaves a claimed number without a version (skipped).
 */
export class ModelRegistry {
  constructor(
    readonly store: ArtifactStore,
    /** Committed versions' metadata in memory (StorageModule gives one where Redis carries invalidations). */
    private readonly metaCache?: VersionMetaCache,
  ) {}

  /** The registry of one tenant (its models under tenants/<tenant>/models/): names are per tenant. */
  forTenant(tenant: string): ModelRegistry {
    return tenant === this.store.tenant ? this : new ModelRegistry(this.store.forTenant(tenant), this.metaCache);
  }

  /** The cache key of a version (or with version undefined, the prefix of a model's): tenant root included. */
  private metaKey(name: string, version?: number): string {
    return `${this.store.root}${name}/${version === undefined ? '' : `${version}/`}`;
  }

  /** The tenant this registry is scoped to; undefined for the root view (tests, tools). */
  get tenant(): string | undefined {
    return this.store.tenant;
  }

  private get blobs() {
    return this.store.blobs;
  }

  /**
   * `write(out)` stores the artifacts (model.json, weights.bin, ...). With a job's fence
   * (registerFenced), the job registers at most one version whatever its attempts do.
   */
  async register(
    name: string,
    meta: NewVersionMeta,
    write: (out: VersionWriter) => Promise<void>,
    opts: { fence?: JobFence | undefined } = {},
  ): Promise<ModelVersionMeta> {
    if (opts.fence) return this.registerFenced(name, meta, write, opts.fence);
    const first = (await this.latestVersion(name)) + 1;
    for (let version = first; version < first + MAX_VERSION_TRIES; version++) {
      const ref = { name, version };
      if (!(await this.claim(ref, null))) continue;
      return this.writeVersion(ref, meta, write);
    }
    throw new Error(`no free version of "${name}" after ${MAX_VERSION_TRIES} tries from ${first}`);
  }

  /**
   * One job's version: its number comes from the fence (the same for every attempt of the job, only
   * while the attempt holds it); an attempt that finds it committed with this job's lineage returns
   * it (an earlier attempt got that far); the lock is checked again right before the commit, so a
   * stale attempt (its lock lapsed while it stalled) commits nothing. Two attempts that pass the
   * check at once race on one create of metadata.json: the loser returns the winner's version.
   */
  private async registerFenced(
    name: string,
    meta: NewVersionMeta,
    write: (out: VersionWriter) => Promise<void>,
    fence: JobFence,
  ): Promise<ModelVersionMeta> {
    const jobId = meta.lineage.jobId;
    if (!jobId) throw new Error(`a fenced registration of "${name}" needs lineage.jobId`);
    // Numbers are per tenant as names are: the counter is named with the tenant's prefix.
    const version = await fence.versionFor(this.store.root + name, await this.latestVersion(name));
    const ref = { name, version };
    const earlier = await this.jobVersion(ref, jobId);
    if (earlier) return earlier;
    if (!(await this.claim(ref, jobId))) {
      const holder = await this.readClaim(ref);
      if (holder?.jobId !== jobId)
        throw new Error(
          `version ${version} of "${name}", allocated to job ${jobId}, is claimed by ` +
            `${holder?.jobId ? `job ${holder.jobId}` : 'a registration without a job'}`,
        );
    }
    return this.writeVersion(ref, meta, write, { fence, jobId });
  }

  /** Writes the artifacts into a fresh set, then commits metadata.json (create-only). */
  private async writeVersion(
    ref: ModelRef,
    meta: NewVersionMeta,
    write: (out: VersionWriter) => Promise<void>,
    fenced?: { fence: JobFence; jobId: string },
  ): Promise<ModelVersionMeta> {
    const artifactSet = randomBytes(8).toString('hex');
    const artifacts: Record<string, number> = {};
    try {
      const storedAs: Record<string, StoredEncoding> = {};
      await write({
        put: async (file, data) => {
          const { body, encoded } = await encodeArtifact(file, data);
          const key = this.store.modelKey(ref, artifactSet, artifactName(file));
          const head = await this.blobs.put(key, body, encoded ? { contentEncoding: encoded.encoding } : {});
          artifacts[file] = encoded ? data.length : head.size;
          if (encoded) storedAs[file] = encoded;
        },
      });
      const full = modelVersionMetaSchema.parse({
        task: 'classification',
        ...meta,
        ...ref,
        createdAt: new Date().toISOString(),
        artifacts,
        ...(Object.keys(storedAs).length > 0 ? { storedAs } : {}),
        artifactSet,
      });
      await this.blobs.put(this.store.modelKey(ref, METADATA_JSON), JSON.stringify(full, null, 2), {
        ifNoneMatch: '*',
        ...(fenced ? { beforeCommit: () => fenced.fence.assertHeld() } : {}),
      });
      return full;
    } catch (err) {
      await this.blobs.deletePrefix(`${this.store.modelKey(ref, artifactSet)}/`).catch(() => undefined);
      if (err instanceof BlobExistsError && fenced) {
        const taken = await this.jobVersion(ref, fenced.jobId);
        if (taken) return taken;
      }
      throw err;
    }
  }

  /** Takes version `ref`'s number; false when another registration has it. */
  private async claim(ref: ModelRef, jobId: string | null): Promise<boolean> {
    try {
      await this.blobs.put(this.store.modelKey(ref, CLAIM_JSON), JSON.stringify({ jobId } satisfies Claim), {
        ifNoneMatch: '*',
      });
      return true;
    } catch (err) {
      if (err instanceof BlobExistsError) return false;
      throw err;
    }
  }

  private async readClaim(ref: ModelRef): Promise<Claim | undefined> {
    try {
      return JSON.parse((await this.blobs.get(this.store.modelKey(ref, CLAIM_JSON))).toString('utf8')) as Claim;
    } catch (err) {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Version `ref` when job `jobId` registered it; undefined when it does not exist; an Error when
   * another job holds the number the fence gave this one (a writer that bypassed the fences).
   */
  private async jobVersion(ref: ModelRef, jobId: string): Promise<ModelVersionMeta | undefined> {
    let found: ModelVersionMeta;
    try {
      found = await this.getVersion(ref);
    } catch (err) {
      if (err instanceof ModelNotFoundError) return undefined;
      throw err;
    }
    if (found.lineage.jobId === jobId) return found;
    throw new Error(
      `version ${ref.version} of "${ref.name}", allocated to job ${jobId}, is held by ` +
        `${found.lineage.jobId ? `job ${found.lineage.jobId}` : 'a registration without a job'}`,
    );
  }

  /** Adds or replaces one artifact of a version (e.g. model.onnx) and records its size. */
  async putArtifact(ref: ModelRef, file: string, data: string | Uint8Array): Promise<ModelVersionMeta> {
    if (file === METADATA_JSON || file === CLAIM_JSON) throw new Error(`bad artifact name "${file}"`);
    const meta = await this.readVersion(ref);
    const { body, encoded } = await encodeArtifact(file, data);
    const head = await this.blobs.put(this.artifactKey(meta, file), body, encoded ? { contentEncoding: 'gzip' } : {});
    const { [file]: _replaced, ...storedAs } = meta.storedAs ?? {};
    if (encoded) storedAs[file] = encoded;
    const updated: ModelVersionMeta = {
      ...meta,
      artifacts: { ...meta.artifacts, [file]: encoded ? data.length : head.size },
      ...(Object.keys(storedAs).length > 0 ? { storedAs } : { storedAs: undefined }),
    };
    await this.blobs.put(this.store.modelKey(ref, METADATA_JSON), JSON.stringify(updated, null, 2));
    // Every process's cached copy lacks the new artifact (the engine would keep serving the old one).
    await this.metaCache?.changed(this.metaKey(ref.name, ref.version));
    return updated;
  }

  async names(): Promise<string[]> {
    const names = new Set<string>();
    for await (const { key } of this.blobs.list(this.store.modelsPrefix())) {
      const [, name, version, file] = this.store.relative(key).split('/');
      if (name && /^\d+$/.test(version ?? '') && file === METADATA_JSON) names.add(name);
    }
    return [...names].sort();
  }

  async versions(name: string): Promise<ModelVersionMeta[]> {
    const numbers = (await this.numbers(name)).committed.sort((a, b) => a - b);
    // A committed version that is unreadable or corrupt is a fault, not an absence.
    return Promise.all(numbers.map((version) => this.getVersion({ name, version })));
  }

  /** A committed version's metadata (from the cache when there is one: treat it as read-only). */
  async getVersion(ref: ModelRef): Promise<ModelVersionMeta> {
    if (!this.metaCache) return this.readVersion(ref);
    const key = this.metaKey(ref.name, ref.version);
    const cached = this.metaCache.get(key);
    if (cached) return cached;
    const generation = this.metaCache.generation();
    const meta = await this.readVersion(ref);
    this.metaCache.set(key, meta, generation);
    return meta;
  }

  private async readVersion(ref: ModelRef): Promise<ModelVersionMeta> {
    let raw: string;
    try {
      raw = (await this.blobs.get(this.store.modelKey(ref, METADATA_JSON))).toString('utf8');
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new ModelNotFoundError(ref);
      throw err;
    }
    try {
      return modelVersionMetaSchema.parse(JSON.parse(raw));
    } catch (err) {
      throw new Error(`version ${ref.version} of "${ref.name}" has a corrupt ${METADATA_JSON}`, { cause: err });
    }
  }

  /** False only when the version is missing: a corrupt or unreadable one is a fault, not an absence. */
  async exists(ref: ModelRef): Promise<boolean> {
    return this.getVersion(ref).then(
      () => true,
      (err: unknown) => {
        if (err instanceof ModelNotFoundError) return false;
        throw err;
      },
    );
  }

  /** The highest number claimed (committed or not), 0 when there is none. */
  async latestVersion(name: string): Promise<number> {
    return (await this.numbers(name)).claimed.reduce((a, b) => Math.max(a, b), 0);
  }

  /**
   * What the API answers for an artifact: a stream, or (S3 with `redirectSeconds`) a presigned
   * URL; of the stored bytes, so a gzipped one comes with its encoding and decoded size. Only names the version's metadata lists (own properties: "constructor" or "__proto__" are
   * no artifact), so metadata.json stays private; an artifact deleted from under its version is an
   * ArtifactNotFoundError naming it.
   */
  serveArtifact(ref: ModelRef, file: string, opts: ServeOptions = {}): Promise<ServedArtifact> {
    return this.readListed(ref, file, async (key, meta) => {
      const served = await this.blobs.serve(key, opts);
      const encoded = meta.storedAs?.[file];
      return encoded ? { ...served, encoding: encoded.encoding, decodedSize: meta.artifacts[file]! } : served;
    });
  }

  /** An artifact's bytes (model weights, preprocessing.json, an ONNX graph), decoded; the same rules as serveArtifact. */
  readArtifact(ref: ModelRef, file: string): Promise<Buffer> {
    return this.readListed(ref, file, async (key, meta) =>
      decodeArtifact(await this.blobs.get(key), meta.storedAs?.[file], meta.artifacts[file]!),
    );
  }

  private async readListed<T>(
    ref: ModelRef,
    file: string,
    read: (key: string, meta: ModelVersionMeta) => Promise<T>,
  ): Promise<T> {
    const meta = await this.getVersion(ref);
    if (!Object.hasOwn(meta.artifacts, file)) throw new ArtifactNotFoundError(ref, file);
    try {
      return await read(this.artifactKey(meta, file), meta);
    } catch (err) {
      if (err instanceof BlobNotFoundError) throw new ArtifactNotFoundError(ref, file);
      throw err;
    }
  }

  /** Removes every object of a model (all versions). */
  async removeModel(name: string): Promise<void> {
    await this.blobs.deletePrefix(this.store.modelsPrefix(name));
    await this.metaCache?.changed(this.metaKey(name));
  }

  private artifactKey(meta: ModelVersionMeta, file: string): string {
    const name = artifactName(file);
    return meta.artifactSet ? this.store.modelKey(meta, meta.artifactSet, name) : this.store.modelKey(meta, name);
  }

  /** Version numbers of `name`: claimed (a claim or a version there) and committed (metadata.json there). */
  private async numbers(name: string): Promise<{ claimed: number[]; committed: number[] }> {
    const claimed = new Set<number>();
    const committed: number[] = [];
    for await (const { key } of this.blobs.list(this.store.modelsPrefix(name))) {
      const [, , version, ...rest] = this.store.relative(key).split('/');
      if (!/^\d+$/.test(version ?? '')) continue;
      claimed.add(Number(version));
      if (rest.length === 1 && rest[0] === METADATA_JSON) committed.push(Number(version));
    }
    return { claimed: [...claimed], committed };
  }
}

/** An artifact's file name: one safe segment (no path, no dot first); metadata.json and claim.json are the registry's. */
function artifactName(file: string): string {
  if (!ARTIFACT_NAME.test(file) || file === METADATA_JSON || file === CLAIM_JSON)
    throw new Error(`bad artifact name "${file}"`);
  return file;
}
