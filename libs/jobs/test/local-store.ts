import { join } from 'node:path';
import { LocalBlobStore, type ArtifactStore } from '@tq/storage';

/**
 * Where a key of a local store lives, for tests that look at the folder itself (no temp file left,
 * no descriptor left open): the tests run the job bodies on the local blob store.
 */
export function localPath(store: ArtifactStore, key: string): string {
  if (!(store.blobs instanceof LocalBlobStore)) throw new Error('these checks need the local blob store');
  return join(store.blobs.root, ...key.replace(/\/$/, '').split('/'));
}

/** A job's output as text (the whole object). */
export async function readOutput(store: ArtifactStore, jobId: string): Promise<string> {
  return (await store.blobs.get(store.outputKey(jobId))).toString('utf8');
}
