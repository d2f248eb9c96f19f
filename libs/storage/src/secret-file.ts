import { randomBytes } from 'node:crypto';
import { FieldError } from '@tq/contracts';
import type { ArtifactStore } from './artifact-store';
import { blobKey } from './blob/blob-key';
import { createOnceText } from './create-once';

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
  const text = await createOnceText(store.blobs, blobKey('secrets', name), () => randomBytes(bytes).toString('base64'));
  const secret = Buffer.from(text, 'base64');
  if (secret.length === 0) throw new Error(`secret "${name}" in the artifact store is not base64`);
  return secret;
}
