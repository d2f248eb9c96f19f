import { type ArtifactStore, safeSegment } from './artifact-store';

/**
 * Which checkpoints belong to a job. The naming is the job bodies' (a train job's own
 * `train-<id>`, a distributed run's `ps-<runId>`), so the caller that knows them supplies it.
 */
export interface CheckpointNaming {
  /** Checkpoint keys (ArtifactStore.checkpointPrefix) a job may leave behind. */
  keysOf(jobId: string): string[];
  /** The job a checkpoint key belongs to; undefined for keys of no job (left alone by the orphan sweep). */
  jobOf(key: string): string | undefined;
}

/** One object, or one prefix of objects, a job left in the store, as the orphan sweep sees it. */
export interface JobFile {
  jobId: string;
  kind: 'output' | 'input' | 'checkpoint';
  /** Last change (a prefix: its newest object), ms since the epoch. */
  mtimeMs: number;
  /** Opaque to callers: only removeFile uses it. */
  readonly target: { key: string } | { prefix: string };
}

/** outputs/<id>.jsonl, and a table's infer job's failed rows outputs/<id>.errors.jsonl. */
const OUTPUT = /^outputs\/([^/]+?)(?:\.errors)?\.jsonl$/;
const OUTPUT_PART = /^outputs\/([^/]+)\//;
const INPUT = /^inputs\/([^/]+)\.f32$/;
const CHECKPOINT = /^checkpoints\/([^/]+)\//;

/**
 * A job's objects in the store: its output (outputs/<id>.jsonl, or the parts of a sharded one under
 * outputs/<id>/), its stored inline input (inputs/<id>.f32) and its checkpoints, in the job's tenant
 * (tenants/<tenant>/...), or at the root for objects written before tenants existed. Callers that
 * know the job's tenant (its envelope, its tombstone) pass it; otherwise every tenant holding
 * objects is looked in, from a listing made for the call (a cached one missed tenants made since:
 * a new tenant's first jobs kept their files). Retention sizes and removes them with the job; the
 * orphan sweep lists them to find those whose job is gone. Every deletion of a job's objects is here.
 */
export class JobFiles {
  /** The listing in flight: calls made meanwhile share it (it started after they were asked). */
  private listing: Promise<ArtifactStore[]> | undefined;

  constructor(
    private readonly store: ArtifactStore,
    private readonly checkpoints: CheckpointNaming,
  ) {}

  /** The root view and every tenant's view, from a listing of the store's tenants. */
  private allViews(): Promise<ArtifactStore[]> {
    this.listing ??= this.store
      .tenants()
      .then((ts) => [this.store, ...ts.map((t) => this.store.forTenant(t))])
      .finally(() => (this.listing = undefined));
    return this.listing;
  }

  /** Where a job's objects may be: its tenant's view and the root (older objects), or every view. */
  private async viewsOf(tenant: string | undefined): Promise<ArtifactStore[]> {
    return tenant === undefined ? this.allViews() : [this.store, this.store.forTenant(tenant)];
  }

  /** An id that cannot be a key (safeSegment refuses it) has no object of that kind: skipped, not thrown. */
  private targetsOf(view: ArtifactStore, jobId: string): JobFile['target'][] {
    const makers: (() => JobFile['target'])[] = [
      () => ({ key: view.outputKey(jobId) }),
      () => ({ key: view.outputKey(jobId, 'errors.jsonl') }),
      () => ({ prefix: view.outputPartsPrefix(jobId) }),
      () => ({ key: view.inputKey(jobId) }),
      ...this.checkpoints.keysOf(jobId).map((key) => () => ({ prefix: view.checkpointPrefix(key) })),
    ];
    return makers.flatMap((make) => {
      try {
        return [make()];
      } catch {
        return [];
      }
    });
  }

  private async allTargetsOf(jobId: string, tenant: string | undefined): Promise<JobFile['target'][]> {
    return (await this.viewsOf(tenant)).flatMap((view) => this.targetsOf(view, jobId));
  }

  /** Bytes the job's objects take (0 for a job that has none); `tenant`: the job's, when known. */
  async bytes(jobId: string, tenant?: string): Promise<number> {
    const sizes = await Promise.all((await this.allTargetsOf(jobId, tenant)).map((t) => this.targetBytes(t)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** Removes the job's output, stored input and checkpoints; nothing there is no error. */
  async remove(jobId: string, tenant?: string): Promise<void> {
    await Promise.all((await this.allTargetsOf(jobId, tenant)).map((t) => this.removeTarget(t)));
  }

  /**
   * Every job object (or prefix) in the store, in every tenant, with the job it belongs to. Names
   * map back to ids through safeSegment, which keeps ids of the API's alphabet as they are (it only
   * turns ':' into '_').
   */
  async *list(): AsyncGenerator<JobFile> {
    for (const view of await this.allViews()) yield* this.listView(view);
  }

  private async *listView(view: ArtifactStore): AsyncGenerator<JobFile> {
    const prefixes = new Map<string, JobFile>();
    const grouped = (jobId: string, kind: JobFile['kind'], prefix: string, modified: number): void => {
      const seen = prefixes.get(prefix);
      if (seen) seen.mtimeMs = Math.max(seen.mtimeMs, modified);
      else prefixes.set(prefix, { jobId, kind, mtimeMs: modified, target: { prefix } });
    };
    for await (const { key, modified } of view.blobs.list(view.outputsPrefix())) {
      const rel = view.relative(key);
      const whole = jobIdOfSegment(OUTPUT.exec(rel)?.[1]);
      if (whole) yield { jobId: whole, kind: 'output', mtimeMs: modified, target: { key } };
      const part = OUTPUT_PART.exec(rel);
      const partOf = jobIdOfSegment(part?.[1]);
      if (part && partOf) grouped(partOf, 'output', view.root + part[0], modified);
    }
    for await (const { key, modified } of view.blobs.list(view.inputsPrefix())) {
      const jobId = jobIdOfSegment(INPUT.exec(view.relative(key))?.[1]);
      if (jobId) yield { jobId, kind: 'input', mtimeMs: modified, target: { key } };
    }
    for await (const { key, modified } of view.blobs.list(view.checkpointsPrefix())) {
      const match = CHECKPOINT.exec(view.relative(key));
      const jobId = match ? this.checkpoints.jobOf(match[1]!) : undefined;
      if (match && jobId) grouped(jobId, 'checkpoint', view.root + match[0], modified);
    }
    yield* prefixes.values();
  }

  /** Removes one object (or prefix) that list() returned. */
  async removeFile(file: JobFile): Promise<void> {
    await this.removeTarget(file.target);
  }

  private async removeTarget(target: JobFile['target']): Promise<void> {
    if ('key' in target) await this.store.blobs.delete(target.key);
    else await this.store.blobs.deletePrefix(target.prefix);
  }

  private async targetBytes(target: JobFile['target']): Promise<number> {
    if ('key' in target) return (await this.store.blobs.head(target.key))?.size ?? 0;
    let total = 0;
    for await (const { size } of this.store.blobs.list(target.prefix)) total += size;
    return total;
  }
}

/** The job id of a key segment written by safeSegment, for ids the API issues (checked, so no tricks). */
export function jobIdOfSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return safeSegment(segment) === segment ? segment : undefined;
  } catch {
    return undefined;
  }
}
