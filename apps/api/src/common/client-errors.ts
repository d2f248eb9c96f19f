import { ModelNotFoundError } from '@tq/storage';

export interface ClientError { status: number; field: string; reason: string }

/**
 * Lib errors carry `field` and `reason` when the client caused them (a dataset cell that is not a
 * number, a layer that does not fit the data, a wrong feature count); missing things are 404.
 */
export function isClientError(err: unknown): ClientError | undefined {
  if (err instanceof ModelNotFoundError) return { status: 404, field: 'model', reason: err.message };
  if (!(err instanceof Error)) return undefined;
  const { field, reason } = err as Error & { field?: unknown; reason?: unknown };
  if (typeof field !== 'string') return undefined;
  const status = err.name.endsWith('NotFoundError') ? 404 : 400;
  return { status, field, reason: typeof reason === 'string' ? reason : err.message };
}
