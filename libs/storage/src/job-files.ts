import { readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { type ArtifactStore, safeSegment } from './artifact-store';

/**
 * Which checkpoint folders belong to a job. The naming is the job bodies' (a train job's own
 * `train-<id>`, a distributed run's `ps-<runId>`), so the caller that knows them supplies it.
 */
export interface CheckpointNaming {
  /** Checkpoint keys (ArtifactStore.checkpointDir) a job may leave behind. */
  keysOf(jobId: string): string[];
  /** The job a checkpoint key belongs to; undefined for keys of no job (left alone by the orphan sweep). */
  jobOf(key: string): string | undefined;
}

/** One file or folder a job left in the artifact store, as the orphan sweep sees it. */
export interface JobFile {
  jobId: string;
  kind: 'output' | 'input' | 'checkpoint';
  /** Last change (a checkpoint folder: its entries' newest), ms since the epoch. */
  mtimeMs: number;
  /** Opaque to callers: only removeFile uses it. */
  readonly path: string;
}

// An output or input, finished or left half-written (writeOutput's partial, writeFileAtomic's tmp).
const OUTPUT = /^(.+)\.jsonl(\.[0-9a-f-]{36}\.partial)?$/;
const INPUT = /^(.+)\.f32(\.[0-9a-f-]{36}\.tmp)?$/;

/**
 * A job's files in the artifact store: its output (outputs/<id>.jsonl), its stored inline input
 * (inputs/<id>.f32) and its checkpoint folders. Retention sizes and removes them with the job; the
 * orphan sweep lists them to find those whose job is gone. Every deletion of a job's files is here.
 */
export class JobFiles {
  constructor(
    private readonly store: ArtifactStore,
    private readonly checkpoints: CheckpointNaming,
  ) {}

  /** An id that cannot name a file (safeSegment refuses it) has no file of that kind: skipped, not thrown. */
  private pathsOf(jobId: string): string[] {
    const makers = [
      () => this.store.outputPath(jobId),
      () => this.store.inputPath(jobId),
      ...this.checkpoints.keysOf(jobId).map((key) => () => this.store.checkpointDir(key)),
    ];
    return makers.flatMap((make) => {
      try {
        return [make()];
      } catch {
        return [];
      }
    });
  }

  /** Bytes the job's files take (0 for a job that has none). */
  async bytes(jobId: string): Promise<number> {
    const sizes = await Promise.all(this.pathsOf(jobId).map((p) => treeBytes(p)));
    return sizes.reduce((a, b) => a + b, 0);
  }

  /** Removes the job's output, stored input and checkpoints; nothing there is no error. */
  async remove(jobId: string): Promise<void> {
    await Promise.all(this.pathsOf(jobId).map((p) => rm(p, { recursive: true, force: true })));
  }

  /**
   * Every job file in the store, with the job it belongs to. Names map back to ids through
   * safeSegment, which keeps ids of the API's alphabet as they are (it only turns ':' into '_').
   */
  async *list(): AsyncGenerator<JobFile> {
    const outputs = dirname(this.store.outputPath('x'));
    const inputs = dirname(this.store.inputPath('x'));
    const checkpoints = dirname(this.store.checkpointDir('x'));
    for (const name of await names(outputs)) {
      const jobId = jobIdOfSegment(OUTPUT.exec(name)?.[1]);
      if (jobId) yield await this.file(jobId, 'output', join(outputs, name));
    }
    for (const name of await names(inputs)) {
      const jobId = jobIdOfSegment(INPUT.exec(name)?.[1]);
      if (jobId) yield await this.file(jobId, 'input', join(inputs, name));
    }
    for (const name of await names(checkpoints)) {
      const jobId = this.checkpoints.jobOf(name);
      if (jobId) yield await this.file(jobId, 'checkpoint', join(checkpoints, name));
    }
  }

  /** Removes one file (or checkpoint folder) that list() returned. */
  async removeFile(file: JobFile): Promise<void> {
    if (!file.path.startsWith(this.store.root + sep)) throw new Error(`not a job file: ${file.path}`);
    await rm(file.path, { recursive: true, force: true });
  }

  private async file(jobId: string, kind: JobFile['kind'], path: string): Promise<JobFile> {
    return { jobId, kind, path, mtimeMs: await newestMtime(path) };
  }
}

async function names(dir: string): Promise<string[]> {
  return readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
}

/** A file's size, or a folder's files' total; 0 when it is not there. */
async function treeBytes(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return 0;
  if (!info.isDirectory()) return info.size;
  const sizes = await Promise.all((await names(path)).map((n) => treeBytes(join(path, n))));
  return sizes.reduce((a, b) => a + b, 0);
}

/** A file's mtime; a folder's newest of its own and its entries' (a checkpoint rewritten in place). */
async function newestMtime(path: string): Promise<number> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return Date.now(); // vanished meanwhile: as if new, so it is not touched
  if (!info.isDirectory()) return info.mtimeMs;
  const inner = await Promise.all((await names(path)).map((n) => newestMtime(join(path, n))));
  return Math.max(info.mtimeMs, ...inner);
}

/** The job id of a name written by safeSegment, for ids the API issues (checked, so no path tricks). */
export function jobIdOfSegment(segment: string | undefined): string | undefined {
  if (segment === undefined) return undefined;
  try {
    return safeSegment(segment) === segment ? segment : undefined;
  } catch {
    return undefined;
  }
}
