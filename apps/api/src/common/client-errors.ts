import { TqError, FieldError } from '@tq/contracts';

export interface ClientError {
  status: number;
  issues: { field: string; reason: string }[];
}

/** A TqError is the client's doing (or a missing thing): its status and, for field errors, its issues. */
export function isClientError(err: unknown): ClientError | undefined {
  if (!(err instanceof TqError)) return undefined;
  const issues = err instanceof FieldError ? [...err.issues] : [{ field: '(job)', reason: err.message }];
  return { status: err.status, issues };
}
