import { NotFoundError } from '@tq/contracts';

/**
 * A `.catch` handler: a missing thing of class `kind` becomes a 404 naming the request's own
 * field ("version", "input.dataset.id", ...); any other fault (corrupt metadata, EACCES, a missing
 * thing of another kind) passes unchanged, so a server fault stays a logged 500.
 */
export function notFoundAs(kind: abstract new (...args: never[]) => NotFoundError, field: string) {
  return (err: unknown): never => {
    if (err instanceof kind) throw new NotFoundError(field, err.reason);
    throw err;
  };
}
