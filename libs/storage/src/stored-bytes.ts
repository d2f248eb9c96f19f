import { tenantPrefix } from './artifact-store';
import type { BlobStore } from './blob/blob-store';

/**
 * Bytes a tenant keeps in the store (its quota, TENANT_MAX_STORED_BYTES): the sizes of every
 * object under its prefix, listed through the blob store. A listing costs one request per 1,000
 * objects on S3, so a figure is trusted for `cacheMs`, and concurrent callers share one listing.
 */
export class StoredBytes {
  private readonly figures = new Map<string, { bytes: number; at: number }>();
  private readonly listing = new Map<string, Promise<number>>();

  constructor(
    private readonly blobs: BlobStore,
    private readonly cacheMs: number,
  ) {}

  async storedBytes(tenant: string): Promise<number> {
    const known = this.figures.get(tenant);
    if (known && Date.now() - known.at < this.cacheMs) return known.bytes;
    let pending = this.listing.get(tenant);
    if (!pending) {
      pending = this.sum(tenant).finally(() => this.listing.delete(tenant));
      this.listing.set(tenant, pending);
    }
    return pending;
  }

  /** Forgets the tenant's figure (after it stored or removed something here). */
  forget(tenant: string): void {
    this.figures.delete(tenant);
  }

  private async sum(tenant: string): Promise<number> {
    let bytes = 0;
    for await (const entry of this.blobs.list(tenantPrefix(tenant))) bytes += entry.size;
    // Bounded by tenants that asked within cacheMs; stale figures go as new ones come.
    for (const [t, f] of this.figures) if (Date.now() - f.at >= this.cacheMs) this.figures.delete(t);
    this.figures.set(tenant, { bytes, at: Date.now() });
    return bytes;
  }
}
