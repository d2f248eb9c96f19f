import { DEFAULT_TENANT, tenantSchema } from '@tq/contracts';
import { loadConfig } from '@tq/config';
import { ArtifactStore, adoptUntenanted, blobStoreFromConfig } from '@tq/storage';

/**
 * `node dist/tools/adopt-untenanted.js [--dry-run] [--tenant <tenant>]`: moves a store's objects
 * from before tenants existed (models/, datasets/, outputs/, inputs/, checkpoints/ at its root)
 * into a tenant (default: "default"), with the same settings as the app (BLOB_STORE, S3_*,
 * ARTIFACT_DIR, ENCRYPTION_*). Run it with the system stopped. Exits 1 when some objects were left
 * because the tenant already had one under the same key (named in the output).
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const dryRun = args.includes('--dry-run');
  const at = args.indexOf('--tenant');
  const tenant = at >= 0 ? args[at + 1] : undefined;
  if (at >= 0 && tenant === undefined) throw new Error('--tenant needs a tenant name');
  const checked = tenantSchema.safeParse(tenant ?? DEFAULT_TENANT);
  if (!checked.success) throw new Error(`--tenant: ${checked.error.issues[0]?.message ?? 'not a tenant name'}`);
  const blobs = blobStoreFromConfig(loadConfig());
  try {
    await blobs.check();
    const root = new ArtifactStore(blobs);
    const into = root.forTenant(checked.data);
    console.log(`${dryRun ? 'dry run: ' : ''}moving objects from before tenants in ${blobs.location} to ${into.root}`);
    const report = await adoptUntenanted(root, {
      tenant: checked.data,
      dryRun,
      onObject: (key, outcome, target) => console.log(`${outcome.padEnd(8)} ${key} → ${target}`),
    });
    console.log(
      `${report.moved} objects ${dryRun ? 'to move' : 'moved'}; ${report.conflicts.length} left at the root ` +
        `(the tenant has an object under the same key)`,
    );
    if (report.conflicts.length > 0) process.exitCode = 1;
  } finally {
    blobs.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
