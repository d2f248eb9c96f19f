import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { FieldError, toFieldIssues } from '@tq/contracts';

/**
 * Validates a body or query against a contract schema and returns the parsed (defaulted) value.
 * Hand-written (20 lines) because nestjs-zod does not declare support for Nest 12 yet.
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(
    private readonly schema: S,
    private readonly prefix = '',
  ) {}

  transform(value: unknown): z.output<S> {
    const parsed = this.schema.safeParse(value ?? {});
    if (parsed.success) return parsed.data;
    throw new FieldError(toFieldIssues(parsed.error).map((i) => ({ field: this.prefix + i.field, reason: i.reason })));
  }
}
