import { loadConfig } from '@tq/config';
import { EncryptedBlobStore, blobStoreFromConfig, reencryptStore } from '@tq/storage';

/**
 * `node dist/tools/reencrypt-store.js [--dry-run] [--prefix a/b/]`: rewrites every stored object
 * that is not sealed under the active key (ENCRYPTION_KEY_ID, else the first of ENCRYPTION_KEYS),
 * with the same settings as the app (BLOB_STORE, S3_*, ARTIFACT_DIR, ENCRYPTION_*). Completes a
 * rotation (then drop the old key from ENCRYPTION_KEYS) or, with ENCRYPTION_READ_PLAINTEXT=true, a
 * migration from an unencrypted store (then unset it). Exits 1 if any object could not be read.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dryRun = args.includes('--dry-run');
  const at = args.indexOf('--prefix');
  const prefix = at >= 0 ? (args[at + 1] ?? '') : '';
  const store = blobStoreFromConfig(loadConfig());
  if (!(store instanceof EncryptedBlobStore)) {
    store.close();
    throw new Error('ENCRYPTION_KEYS is not set: there is no key to re-encrypt under (docs/storage.md)');
  }
  try {
    await store.check();
    console.log(`${dryRun ? 'dry run: ' : ''}re-encrypting ${store.location}${prefix ? ` under ${prefix}` : ''}`);
    const report = await reencryptStore(store, {
      prefix,
      dryRun,
      onObject: (key, outcome, detail) => {
        if (outcome !== 'current') console.log(`${outcome.padEnd(9)} ${key}${detail ? ` (${detail})` : ''}`);
      },
    });
    console.log(
      `${report.objects} objects: ${report.current} already under "${store.activeKeyId}", ` +
        `${report.rewritten} ${dryRun ? 'to rewrite' : 'rewritten'} (${report.fromPlaintext} from plaintext), ` +
        `${report.skipped} changed meanwhile (left to their writer), ${report.failed.length} unreadable`,
    );
    if (report.failed.length > 0) process.exitCode = 1;
  } finally {
    store.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
