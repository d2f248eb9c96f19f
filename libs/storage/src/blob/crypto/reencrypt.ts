import { BlobIntegrityError, BlobKeyUnavailableError, BlobNotFoundError } from '../blob-errors';
import type { EncryptedBlobStore } from './encrypted-blob-store';

export interface ReencryptOptions {
  /** Only keys under this prefix ('' or "a/b/"); everything by default. */
  prefix?: string;
  /** Count what would be rewritten, write nothing. */
  dryRun?: boolean;
  /** Called per object rewritten, skipped or failed (progress, logs). */
  onObject?: (key: string, outcome: ReencryptOutcome, detail?: string) => void;
}

export type ReencryptOutcome = 'current' | 'rewritten' | 'changed' | 'gone' | 'failed';

export interface ReencryptReport {
  /** Objects listed. */
  objects: number;
  /** Already sealed under the active key: left alone. */
  current: number;
  /** Rewritten under the active key (from an older key, or plaintext). */
  rewritten: number;
  /** Of those, objects that had no header (plaintext, read with ENCRYPTION_READ_PLAINTEXT). */
  fromPlaintext: number;
  /** Replaced or deleted by someone else while being rewritten: left as the other writer left them. */
  skipped: number;
  /** Unreadable (integrity failure, key not listed): named with the reason, left as they are. */
  failed: Array<{ key: string; reason: string }>;
}

/**
 * Completes a key rotation: every object not sealed under the active key (ENCRYPTION_KEY_ID) is
 * read (decrypted under its old key, or as plaintext when ENCRYPTION_READ_PLAINTEXT allows) and
 * written back under the active one, streamed, one object at a time. Afterwards the old key can
 * leave ENCRYPTION_KEYS. An object replaced while it is copied is not overwritten: the put checks,
 * just before it commits, that the stored object is still the one read (its etag), so a writer's
 * newer object wins; the window left is that check to the commit (a rename, or S3's completion).
 */
export async function reencryptStore(
  store: EncryptedBlobStore,
  options: ReencryptOptions = {},
): Promise<ReencryptReport> {
  const report: ReencryptReport = { objects: 0, current: 0, rewritten: 0, fromPlaintext: 0, skipped: 0, failed: [] };
  const note = options.onObject ?? (() => {});
  for await (const { key } of store.inner.list(options.prefix ?? '')) {
    report.objects++;
    try {
      const keyId = await store.keyIdOf(key);
      if (keyId === store.activeKeyId) {
        report.current++;
        note(key, 'current');
        continue;
      }
      if (!options.dryRun) {
        const read = await store.stream(key);
        const etag = read.etag; // the stored object's (the inner store's) etag
        try {
          await store.put(key, read.stream, {
            contentType: read.contentType,
            beforeCommit: async () => {
              if ((await store.inner.head(key))?.etag !== etag) throw new ObjectChangedError(key);
            },
          });
        } catch (err) {
          read.stream.destroy();
          throw err;
        }
      }
      report.rewritten++;
      if (keyId === undefined) report.fromPlaintext++;
      note(key, 'rewritten', keyId === undefined ? 'was plaintext' : `was under "${keyId}"`);
    } catch (err) {
      if (err instanceof ObjectChangedError || err instanceof BlobNotFoundError) {
        report.skipped++;
        note(key, err instanceof BlobNotFoundError ? 'gone' : 'changed');
      } else if (err instanceof BlobIntegrityError || err instanceof BlobKeyUnavailableError) {
        const reason = err instanceof BlobIntegrityError ? `${err.message}: ${err.detail}` : err.message;
        report.failed.push({ key, reason });
        note(key, 'failed', reason);
      } else throw err;
    }
  }
  return report;
}

class ObjectChangedError extends Error {
  constructor(key: string) {
    super(`"${key}" was replaced while it was re-encrypted`);
  }
}
