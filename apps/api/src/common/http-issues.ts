import { BadRequestException, NotFoundException } from '@nestjs/common';
import type { FieldIssue } from '@tq/contracts';

/** Every 4xx body has the same shape: a one-line message and the issues, each naming its field. */
function body(statusCode: number, error: string, issues: FieldIssue[]) {
  return { statusCode, error, message: issues.map((i) => `${i.field}: ${i.reason}`).join('; '), issues };
}

export const badRequest = (issues: FieldIssue[]) => new BadRequestException(body(400, 'Bad Request', issues));
export const notFound = (field: string, reason: string) =>
  new NotFoundException(body(404, 'Not Found', [{ field, reason }]));
