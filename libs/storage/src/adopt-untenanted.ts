import { DEFAULT_TENANT } from '@tq/contracts';
import type { ArtifactStore } from './artifact-store';
import { BlobExistsError, BlobNotFoundError } from './blob/blob-errors';

/** Top-level folders of tenant data; secrets/ and system/ stay where they are (they serve every tenant). */
const TENANT_FOLDERS = ['models', 'datasets', 'outputs', 'inputs', 'checkpoints'] as const;

/**
 * Files whose presence commits what is beside them (a model version's metadata.json, a dataset's
 * info.json and profiling outcome): moved after everything else, so that in the tenant a version
 * or a dataset shows up only once its files are there.
 */
const COMMIT_FILES = new Set(['metadata.json', 'info.json', 'outcome.json']);

export type AdoptOutcome = 'moved' | 'conflict' | 'gone';

export interface AdoptOptions {
  /** The tenant that gets the objects (default: "default", where keys of AUTH=off and TQ_ADMIN_KEY act). */
  tenant?: string;
  /** Count and report, move nothing. */
  dryRun?: boolean;
  onObject?: (key: string, outcome: AdoptOutcome, target: string) => void;
}

export interface AdoptReport {
  /** Objects moved (or, in a dry run, to move). */
  moved: number;
  /** Objects left where they were because the tenant already has one under that key. */
  conflicts: string[];
}

/**
 * Moves the objects a store kept before tenants existed (models/, datasets/, outputs/, inputs/,
 * checkpoints/ at its root) into one tenant's folder (tenants/<tenant>/...), where the API and
 * workers look now: an upgraded store's models, datasets and outputs become the tenant's again.
 * Each object is copied through the store (an encrypted store re-seals it under its new key, to
 * which its AAD is bound), created only if the tenant has none there (else left, and reported),
 * then deleted at the root; commit files go last. Run it with the system stopped (a job writing at
 * the root meanwhile is not possible any more: every writer is tenant-scoped). Running it again
 * moves what is left.
 */
export async function adoptUntenanted(root: ArtifactStore, options: AdoptOptions = {}): Promise<AdoptReport> {
  const target = root.forTenant(options.tenant ?? DEFAULT_TENANT);
  const report: AdoptReport = { moved: 0, conflicts: [] };
  const note = options.onObject ?? (() => undefined);
  const later: string[] = [];
  const move = async (key: string): Promise<void> => {
    const to = target.root + key;
    if (options.dryRun) {
      report.moved++;
      return note(key, 'moved', to);
    }
    try {
      const read = await root.blobs.stream(key);
      try {
        await root.blobs.put(to, read.stream, { contentType: read.contentType, ifNoneMatch: '*' });
      } catch (err) {
        read.stream.destroy();
        throw err;
      }
    } catch (err) {
      if (err instanceof BlobExistsError) {
        report.conflicts.push(key);
        return note(key, 'conflict', to);
      }
      if (err instanceof BlobNotFoundError) return note(key, 'gone', to);
      throw err;
    }
    await root.blobs.delete(key);
    report.moved++;
    note(key, 'moved', to);
  };
  for (const folder of TENANT_FOLDERS)
    for await (const { key } of root.blobs.list(`${folder}/`)) {
      if (COMMIT_FILES.has(key.slice(key.lastIndexOf('/') + 1))) later.push(key);
      else await move(key);
    }
  for (const key of later) await move(key);
  return report;
}
