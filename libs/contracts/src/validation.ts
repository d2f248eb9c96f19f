import type { z } from 'zod';

/** One issue as a client sees it: the dotted field path and the reason. */
export interface FieldIssue { field: string; reason: string }

export function toFieldIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({ field: i.path.length ? i.path.join('.') : '(body)', reason: i.message }));
}

/** "fit.epochs: Too small: expected number to be >=1; model.name: ..." for logs and UnrecoverableError. */
export function describeIssues(error: z.ZodError): string {
  return toFieldIssues(error).map((i) => `${i.field}: ${i.reason}`).join('; ');
}
