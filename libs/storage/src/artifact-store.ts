import { NotFoundError, modelNameSchema, type ModelRef } from '@tq/contracts';
import { BlobNotFoundError } from './blob/blob-errors';
import { blobKey, blobPrefix } from './blob/blob-key';
import type { BlobServe, BlobStore, ServeOptions } from './blob/blob-store';
import { LocalBlobStore } from './blob/local-blob-store';

export { safeSegment } from './blob/blob-key';

/**
 * Where the system keeps its artifacts, as keys in one blob store (a local folder or S3): every
 * key is built here from validated parts, so no caller can name anything outside the layout.
 * Layout: models/<name>/<version>/..., datasets/<id>/..., checkpoints/<key>/<file>,
 * outputs/<jobId>.<ext> (or outputs/<jobId>/... for a sharded job), inputs/<jobId>.f32, secrets/<name>.
 */
export class ArtifactStore {
  readonly blobs: BlobStore;

  /** A blob store, or a folder (a LocalBlobStore there: tests and tools). */
  constructor(blobs: BlobStore | string) {
    this.blobs = typeof blobs === 'string' ? new LocalBlobStore(blobs) : blobs;
  }

  /** "models/" or "models/<name>/". */
  modelsPrefix(name?: string): string {
    return name === undefined ? blobPrefix('models') : blobPrefix('models', modelNameSchema.parse(name));
  }
  /** A key under version `ref`: "models/<name>/<version>/<...parts>". */
  modelKey(ref: ModelRef, ...parts: string[]): string {
    return blobKey('models', modelNameSchema.parse(ref.name), String(Math.trunc(ref.version)), ...parts);
  }
  datasetsPrefix(): string {
    return blobPrefix('datasets');
  }
  datasetPrefix(id: string): string {
    return blobPrefix('datasets', id);
  }
  datasetKey(id: string, file: string): string {
    return blobKey('datasets', id, file);
  }
  checkpointsPrefix(): string {
    return blobPrefix('checkpoints');
  }
  /** Every object of checkpoint `key` (a job's, a run's) is under this prefix. */
  checkpointPrefix(key: string): string {
    return blobPrefix('checkpoints', key);
  }
  checkpointKey(key: string, file: string): string {
    return blobKey('checkpoints', key, file);
  }
  outputsPrefix(): string {
    return blobPrefix('outputs');
  }
  outputKey(jobId: string, ext = 'jsonl'): string {
    return blobKey('outputs', `${jobId}.${ext}`);
  }
  /** A sharded job's parts: "outputs/<jobId>/...". */
  outputPartsPrefix(jobId: string): string {
    return blobPrefix('outputs', jobId);
  }
  outputPartKey(jobId: string, file: string): string {
    return blobKey('outputs', jobId, file);
  }
  inputsPrefix(): string {
    return blobPrefix('inputs');
  }
  inputKey(jobId: string): string {
    return blobKey('inputs', `${jobId}.f32`);
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
