import type { z } from 'zod';
import { describeIssues, toFieldIssues, type FieldIssue } from '@tq/contracts';

/** A payload that fails its schema; the API turns it into a 400 listing each field and reason. */
export class InvalidJobDataError extends Error {
  readonly issues: FieldIssue[];
  constructor(error: z.ZodError) {
    super(describeIssues(error));
    this.issues = toFieldIssues(error);
  }
}
