import type { BlobStore } from './blob/blob-store';
import { BlobExistsError, BlobNotFoundError } from './blob/blob-errors';

/**
 * The text kept under `key`, made by `make` and stored the first time: the write is create-only,
 * so processes racing on a first start all get the first writer's text, and no reader ever sees a
 * partly written one. Surrounding white space is not part of it (a file edited by hand keeps working).
 */
export async function createOnceText(blobs: BlobStore, key: string, make: () => string): Promise<string> {
  const existing = await readText(blobs, key);
  if (existing) return existing;
  try {
    await blobs.put(key, make(), { ifNoneMatch: '*' });
  } catch (err) {
    if (!(err instanceof BlobExistsError)) throw err;
  }
  const kept = await readText(blobs, key);
  if (!kept) throw new Error(`${key} is empty in the artifact store (${blobs.location})`);
  return kept;
}

/** The trimmed text under `key`; undefined when there is none or it is empty. */
async function readText(blobs: BlobStore, key: string): Promise<string | undefined> {
  const text = await blobs.get(key).then(
    (b) => b.toString('utf8').trim(),
    (err: unknown) => {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    },
  );
  return text || undefined;
}
