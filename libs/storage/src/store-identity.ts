import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ArtifactStore } from './artifact-store';
import { blobKey } from './blob/blob-key';
import { createOnceText } from './create-once';

/** Outside tenants, beside secrets/: the store's own id, made by the first process that opens it. */
const STORE_ID_KEY = blobKey('system', 'store-id');

/** Which artifact store a process writes to: what a claim on a queue prefix records. */
export interface StoreIdentity {
  /** Made once in the store, so every process that shares the store (a folder, a bucket) reads the same. */
  readonly id: string;
  /**
   * Where the store is, for messages and to tell a store emptied in place from another store: the
   * bucket (s3://bucket/prefix at endpoint), or host:folder for a local one (two hosts' ./.data are
   * two stores, whatever their paths).
   */
  readonly location: string;
}

/** This store's identity; the first call on a new store makes its id. */
export async function storeIdentity(store: ArtifactStore): Promise<StoreIdentity> {
  const { blobs } = store;
  const id = await createOnceText(blobs, STORE_ID_KEY, () => randomUUID());
  return { id, location: blobs.kind === 'local' ? `${hostname()}:${blobs.location}` : blobs.location };
}
