import { DatasetNotFoundError, ModelNotFoundError } from '@tq/storage';

/**
 * Errors no retry can fix: a missing model or dataset, or a lib error that names the offending
 * field (ModelSpecError, DatasetParseError, a wrong feature count). Everything else is retried.
 */
export function isBadInput(err: unknown): boolean {
  if (err instanceof ModelNotFoundError || err instanceof DatasetNotFoundError) return true;
  return err instanceof Error && typeof (err as { field?: unknown }).field === 'string';
}
