import type { PipeTransform } from '@nestjs/common';
import type { z } from 'zod';
import { FieldError, toFieldIssues } from '@tq/contracts';

/**
 * Validates a body or query against a contract schema and returns the parsed (defaulted) value.
 * With `param` (a path parameter's name), every issue names that parameter: its value is one
 * segment, so the issue's own path ("(body)" for a scalar, a part of a parsed segment) would only
 * mislead. Hand-written (20 lines) because nestjs-zod does not declare support for Nest 12 yet.
 */
export class ZodPipe<S extends z.ZodType> implements PipeTransform<unknown, z.output<S>> {
  constructor(
    private readonly schema: S,
    private readonly param?: string,
  ) {}

  transform(value: unknown): z.output<S> {
    const parsed = this.schema.safeParse(value ?? {});
    if (parsed.success) return parsed.data;
    throw new FieldError(toFieldIssues(parsed.error).map((i) => ({ field: this.param ?? i.field, reason: i.reason })));
  }
}
