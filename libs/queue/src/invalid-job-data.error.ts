import type { z } from 'zod';
import { FieldError, toFieldIssues } from '@tq/contracts';

/** A payload that fails its schema; the API turns it into a 400 listing each field and reason. */
export class InvalidJobDataError extends FieldError {
  constructor(error: z.ZodError) {
    super(toFieldIssues(error));
  }
}
