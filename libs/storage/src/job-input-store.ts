import { NotFoundError } from '@tq/contracts';
import type { ArtifactStore } from './artifact-store';
import { BlobNotFoundError } from './blob/blob-errors';

/** Rows of a job's inline input: `rows` × `features` float32, row-major. */
export interface StoredRows {
  x: Float32Array;
  rows: number;
  features: number;
}

/**
 * Inline request payloads (an infer job's `instances`) kept as an artifact beside the job instead
 * of inside its Redis hash: 1,000 MNIST rows are 2.1 MB of JSON in Redis, 3.1 MB of float32 here,
 * read back without parsing. Keyed by job id, so a retried job (on any host) finds its input.
 */
export class JobInputStore {
  constructor(private readonly store: ArtifactStore) {}

  /** One tenant's stored inputs (tenants/<tenant>/inputs/): a job's input is kept in its tenant. */
  forTenant(tenant: string): JobInputStore {
    return tenant === this.store.tenant ? this : new JobInputStore(this.store.forTenant(tenant));
  }

  async save(jobId: string, instances: readonly (readonly number[])[]): Promise<{ rows: number; features: number }> {
    const features = instances[0]?.length ?? 0;
    const x = new Float32Array(instances.length * features);
    instances.forEach((row, i) => x.set(row, i * features));
    await this.store.blobs.put(this.store.inputKey(jobId), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    return { rows: instances.length, features };
  }

  async load(jobId: string, shape: { rows: number; features: number }): Promise<StoredRows> {
    const bytes = await this.store.blobs.get(this.store.inputKey(jobId)).catch((err: unknown) => {
      if (err instanceof BlobNotFoundError)
        throw new NotFoundError('input', `the stored input of job ${jobId} is gone`);
      throw err;
    });
    if (bytes.byteLength !== shape.rows * shape.features * 4)
      throw new Error(
        `stored input of job ${jobId} has ${bytes.byteLength} bytes, expected ${shape.rows * shape.features * 4}`,
      );
    const x = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return { x, rows: shape.rows, features: shape.features };
  }

  async remove(jobId: string): Promise<void> {
    await this.store.blobs.delete(this.store.inputKey(jobId));
  }
}
