import { mkdir, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { modelVersionMetaSchema, type JobFence, type ModelRef, type ModelVersionMeta } from '@tq/contracts';
import { ArtifactStore, removeDir, writeFileAtomic } from './artifact-store';
import { NotFoundError } from '@tq/contracts';
import { openForRead, type OpenedFile } from './read-stream';

export const METADATA_JSON = 'metadata.json';
/**
 * Versions tried past the latest one before register gives up: each taken one means another writer
 * won that number, so this bounds the loop at far more concurrent registrations than a deployment has.
 */
const MAX_VERSION_TRIES = 1000;
/** What a writer gives; `task` defaults to classification. */
export type NewVersionMeta = Omit<ModelVersionMeta, 'name' | 'version' | 'createdAt' | 'artifacts' | 'task'> &
  Partial<Pick<ModelVersionMeta, 'task'>>;

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

/**
 * Versions, metrics and lineage of models, kept in the artifact folder alone (metadata.json per
 * version), so the registry is rebuilt by reading the folder. Versions are allocated by an atomic
 * rename of a fully written staging folder: concurrent workers never share a number, readers never
 * see half a version.
 */
export class ModelRegistry {
  constructor(readonly store: ArtifactStore) {}

  /**
   * `write(dir)` puts the artifacts (model.json, weights.bin, ...) into a staging folder. With a
   * job's fence (registerFenced), the job registers at most one version whatever its attempts do.
   */
  async register(
    name: string,
    meta: NewVersionMeta,
    write: (dir: string) => Promise<void>,
    opts: { fence?: JobFence | undefined } = {},
  ): Promise<ModelVersionMeta> {
    if (opts.fence) return this.registerFenced(name, meta, write, opts.fence);
    const staging = await this.store.tempDir();
    try {
      await write(staging);
      const nameDir = this.store.modelNameDir(name);
      await mkdir(nameDir, { recursive: true });
      const first = (await this.latestVersion(name)) + 1;
      for (let version = first; version < first + MAX_VERSION_TRIES; version++) {
        const full = await stampMetadata(staging, { name, version }, meta);
        try {
          await rename(staging, this.store.modelDir({ name, version }));
          return full;
        } catch (err) {
          if (!isVersionTaken(err)) throw err;
        }
      }
      throw new Error(`no free version of "${name}" after ${MAX_VERSION_TRIES} tries from ${first}`);
    } finally {
      await removeDir(staging);
    }
  }

  /**
   * One job's version: its number comes from the fence (the same for every attempt of the job, only
   * while the attempt holds it); an attempt that finds it on disk with this job's lineage returns it
   * (an earlier attempt got that far); the lock is checked again right before the rename, so a stale
   * attempt (its lock lapsed while it stalled) commits nothing. Two attempts that pass the check at
   * once race on one rename onto one number: the loser finds the winner's version, this job's too.
   */
  private async registerFenced(
    name: string,
    meta: NewVersionMeta,
    write: (dir: string) => Promise<void>,
    fence: JobFence,
  ): Promise<ModelVersionMeta> {
    const jobId = meta.lineage.jobId;
    if (!jobId) throw new Error(`a fenced registration of "${name}" needs lineage.jobId`);
    const version = await fence.versionFor(name, await this.latestVersion(name));
    const ref = { name, version };
    const earlier = await this.jobVersion(ref, jobId);
    if (earlier) return earlier;
    const staging = await this.store.tempDir();
    try {
      await write(staging);
      await mkdir(this.store.modelNameDir(name), { recursive: true });
      const full = await stampMetadata(staging, ref, meta);
      await fence.assertHeld();
      try {
        await rename(staging, this.store.modelDir(ref));
        return full;
      } catch (err) {
        if (!isVersionTaken(err)) throw err;
        const taken = await this.jobVersion(ref, jobId);
        if (taken) return taken;
        // Another job's version threw above; this is a folder without metadata.json in the way.
        throw new Error(`version ${version} of "${name}" is taken by a folder that is no version`, { cause: err });
      }
    } finally {
      await removeDir(staging);
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
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(file) || file === METADATA_JSON)
      throw new Error(`bad artifact name "${file}"`);
    const meta = await this.getVersion(ref);
    const dir = this.store.modelDir(ref);
    await writeFileAtomic(join(dir, file), data);
    const updated = { ...meta, artifacts: await sizes(dir) };
    await writeFileAtomic(join(dir, METADATA_JSON), JSON.stringify(updated, null, 2));
    return updated;
  }

  async names(): Promise<string[]> {
    return (await listDirs(this.store.modelsDir())).filter((n) => !n.startsWith('.')).sort();
  }

  async versions(name: string): Promise<ModelVersionMeta[]> {
    const dirs = await listDirs(this.store.modelNameDir(name));
    const numbers = dirs
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .sort((a, b) => a - b);
    // A folder without metadata.json is no version (skipped); a corrupt or unreadable one is a fault.
    const metas = await Promise.all(
      numbers.map((version) =>
        this.getVersion({ name, version }).catch((err: unknown) => {
          if (err instanceof ModelNotFoundError) return undefined;
          throw err;
        }),
      ),
    );
    return metas.filter((m): m is ModelVersionMeta => m !== undefined);
  }

  async getVersion(ref: ModelRef): Promise<ModelVersionMeta> {
    let raw: string;
    try {
      raw = await readFile(join(this.store.modelDir(ref), METADATA_JSON), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ModelNotFoundError(ref);
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

  async latestVersion(name: string): Promise<number> {
    const dirs = await listDirs(this.store.modelNameDir(name));
    return dirs
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .reduce((a, b) => Math.max(a, b), 0);
  }

  /**
   * One artifact of a version, for streaming over HTTP: only names the version's metadata lists
   * (own properties: "constructor" or "__proto__" are no artifact), so metadata.json stays private.
   */
  async openArtifact(ref: ModelRef, file: string): Promise<OpenedFile> {
    const meta = await this.getVersion(ref);
    if (!Object.hasOwn(meta.artifacts, file)) throw new ArtifactNotFoundError(ref, file);
    return openForRead(this.artifactPath(ref, file), () => new ArtifactNotFoundError(ref, file));
  }

  /** A small artifact's bytes (e.g. preprocessing.json); the same rules as openArtifact. */
  async readArtifact(ref: ModelRef, file: string): Promise<Buffer> {
    const { stream } = await this.openArtifact(ref, file);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  artifactPath(ref: ModelRef, file: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(file)) throw new Error(`bad artifact name "${file}"`);
    return join(this.store.modelDir(ref), file);
  }
}

async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Writes a staged version's metadata.json (its number, time and the sizes of what is staged); returns it. */
async function stampMetadata(staging: string, ref: ModelRef, meta: NewVersionMeta): Promise<ModelVersionMeta> {
  const full: ModelVersionMeta = {
    task: 'classification',
    ...meta,
    ...ref,
    createdAt: new Date().toISOString(),
    artifacts: await sizes(staging),
  };
  await writeFileAtomic(join(staging, METADATA_JSON), JSON.stringify(modelVersionMetaSchema.parse(full), null, 2));
  return full;
}

async function sizes(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name !== METADATA_JSON && !e.name.endsWith('.tmp'))
      out[e.name] = (await stat(join(dir, e.name))).size;
  }
  return out;
}

/**
 * Whether renaming a staging folder onto a version failed because that version exists: rename(2)
 * reports a non-empty target folder as ENOTEMPTY or EEXIST. Anything else (EPERM, EACCES, ...) is a
 * real fault and must not be retried as "taken".
 */
export function isVersionTaken(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EEXIST' || code === 'ENOTEMPTY';
}
