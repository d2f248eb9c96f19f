import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { NotFoundError, modelNameSchema, type ModelRef } from '@tq/contracts';
import { openForRead, type OpenedFile } from './read-stream';

/**
 * The local artifact folder. Every path is built here from validated parts, so no caller can
 * escape the root. Layout: models/<name>/<version>/, datasets/<id>/, checkpoints/<key>/, outputs/.
 */
export class ArtifactStore {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  modelsDir(): string {
    return join(this.root, 'models');
  }
  modelNameDir(name: string): string {
    return join(this.modelsDir(), modelNameSchema.parse(name));
  }
  modelDir(ref: ModelRef): string {
    return join(this.modelNameDir(ref.name), String(Math.trunc(ref.version)));
  }
  datasetsDir(): string {
    return join(this.root, 'datasets');
  }
  datasetDir(id: string): string {
    return join(this.datasetsDir(), safeSegment(id));
  }
  checkpointDir(key: string): string {
    return join(this.root, 'checkpoints', safeSegment(key));
  }
  outputPath(jobId: string, ext = 'jsonl'): string {
    return join(this.root, 'outputs', `${safeSegment(jobId)}.${ext}`);
  }
  inputPath(jobId: string): string {
    return join(this.root, 'inputs', `${safeSegment(jobId)}.f32`);
  }
  /** A finished job's output (infer: JSONL), for streaming; NotFoundError (field "id") when there is none. */
  openOutput(jobId: string, ext = 'jsonl'): Promise<OpenedFile> {
    return openForRead(this.outputPath(jobId, ext), () => new NotFoundError('id', `job ${jobId} has no output`));
  }
  /**
   * Streams a job's output (e.g. JSONL chunks) into place atomically: readers see the whole file
   * or none. The partial file is unique to this call, so a retried attempt never shares one with a
   * dead one; on any failure (the source throws, a cancel, ENOSPC) pipeline closes the file and the
   * partial is removed before the error is passed on. `beforeCommit` runs right before the rename
   * (a job's fence: an attempt that lost its job throws there and leaves the output to the live one).
   */
  async writeOutput(jobId: string, chunks: AsyncIterable<string>, opts: WriteOutputOptions = {}): Promise<void> {
    const path = this.outputPath(jobId, opts.ext);
    await mkdir(dirname(path), { recursive: true });
    const partial = `${path}.${randomUUID()}.partial`;
    try {
      await pipeline(chunks, createWriteStream(partial));
      await opts.beforeCommit?.();
      await rename(partial, path);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }
  /** A fresh private folder under the root (same filesystem, so a later rename is atomic). */
  async tempDir(): Promise<string> {
    const dir = join(this.root, 'tmp', randomUUID());
    await mkdir(dir, { recursive: true });
    return dir;
  }
}

/** Folder names made from ids: one segment, no dots at the start, nothing but a safe alphabet. */
export function safeSegment(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_:.-]{0,127}$/.test(id) || id.includes('..'))
    throw new Error(`unsafe path segment "${id}"`);
  return id.replace(/:/g, '_');
}

export interface WriteOutputOptions {
  /** The file's extension (default jsonl). */
  ext?: string;
  /** Runs once the file is written, right before it is renamed into place; a throw leaves nothing behind. */
  beforeCommit?: () => Promise<void>;
}

/**
 * Write then rename: readers see the old file or the new one, never half of one. `beforeCommit`
 * runs right before the rename (a job's fence); when it throws, the temp file is removed.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  beforeCommit?: () => Promise<void>,
): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  await writeFile(tmp, data);
  try {
    await beforeCommit?.();
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, path);
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}
