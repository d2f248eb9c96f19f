import type { z } from 'zod';

/** One issue as a client sees it: the dotted field path and the reason. */
export interface FieldIssue {
  field: string;
  reason: string;
}

export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return flatten(error.issues, []).map((i) => ({
    field: i.path.length ? i.path.join('.') : '(body)',
    reason: i.message,
  }));
}

type Issue = { path: PropertyKey[]; message: string; code?: string; errors?: Issue[][] };

/**
 * A failed union ("instances" or "dataset") says only "Invalid input" at the union's path. The
 * branch that got furthest (its deepest issue path) is what the client meant: report its issues.
 */
function flatten(issues: readonly Issue[], prefix: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  return issues.flatMap((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code !== 'invalid_union' || !issue.errors?.length) return [{ path, message: issue.message }];
    const depth = (branch: Issue[]) =>
      Math.max(...branch.map((i) => i.path.length + (i.code === 'unrecognized_keys' ? -1 : 0)));
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    return depth(best) > 0 ? flatten(best, path) : [{ path, message: issue.message }];
  });
}

/** "fit.epochs: Too small: expected number to be >=1; model.name: ..." for logs and UnrecoverableError. */
export function describeIssues(error: z.ZodError): string {
  return toFieldIssues(error)
    .map((i) => `${i.field}: ${i.reason}`)
    .join('; ');
}
