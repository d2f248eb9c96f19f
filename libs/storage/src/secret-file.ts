import { randomBytes } from 'node:crypto';
import { FieldError } from '@tq/contracts';
import type { ArtifactStore } from './artifact-store';
import { BlobExistsError, BlobNotFoundError } from './blob/blob-errors';
import { blobKey } from './blob/blob-key';

const SECRET_NAME = /^[a-z0-9-]{1,64}$/;

/**
 * A random key made once and kept in the blob store (secrets/<name>): every process sharing the
 * store (the API and its restarts, API replicas on several hosts) reads the same one. The first
 * write is create-only, so two processes racing on the first start agree on the first key, and no
 * reader ever sees a partly written one. Whoever can read the store can read the key: keep the
 * artifact folder private (or the bucket), or set the key by configuration.
 */
export async function createOnceSecret(store: ArtifactStore, name: string, bytes = 32): Promise<Buffer> {
  if (!SECRET_NAME.test(name)) throw new FieldError('name', `secret names are ${SECRET_NAME.source}`);
  const key = blobKey('secrets', name);
  const existing = await readSecret(store, key);
  if (existing) return existing;
  try {
    await store.blobs.put(key, randomBytes(bytes).toString('base64'), { ifNoneMatch: '*' });
  } catch (err) {
    if (!(err instanceof BlobExistsError)) throw err;
  }
  const kept = await readSecret(store, key);
  if (!kept) throw new Error(`secret "${name}" is empty in the artifact store`);
  return kept;
}

async function readSecret(store: ArtifactStore, key: string): Promise<Buffer | undefined> {
  const text = await store.blobs.get(key).then(
    (b) => b.toString('utf8'),
    (err: unknown) => {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    },
  );
  const secret = text?.trim() ? Buffer.from(text.trim(), 'base64') : undefined;
  return secret?.length ? secret : undefined;
}
