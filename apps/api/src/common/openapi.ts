import { applyDecorators } from '@nestjs/common';
import { ApiBody, ApiExtension, ApiQuery, ApiResponse, type OpenAPIObject } from '@nestjs/swagger';
import { z } from 'zod';
import { errorBodySchema, TENSOR_CONTENT_TYPE } from '@tq/contracts';

/**
 * OpenAPI schemas generated from the same zod contracts that validate requests (io "input": what
 * a client may send) and type responses (io "output": what the API sends, defaults filled in).
 */
export function openApiSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): Record<string, unknown> {
  return z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' });
}

/**
 * A JSON request body from its contract, with one example that the contract accepts (tested), and
 * optionally named examples of its other shapes (also tested).
 */
export const JsonBody = (schema: z.ZodType, example: unknown, more: Record<string, unknown> = {}) =>
  ApiBody({
    schema: { ...openApiSchema(schema), example },
    ...(Object.keys(more).length > 0
      ? { examples: Object.fromEntries(Object.entries(more).map(([name, value]) => [name, { value }])) }
      : {}),
  });

/** Marks an operation that also takes binary rows (tensor-body.ts); withBinaryRows documents them. */
const BINARY_ROWS = 'x-tq-binary-rows';
export const BinaryRowsBody = () => ApiExtension(BINARY_ROWS, true);

/**
 * The document with an `application/octet-stream` body beside the JSON one on the operations marked
 * BinaryRowsBody: swagger's decorators give every media type of a body the same (JSON) schema.
 */
export function withBinaryRows(doc: OpenAPIObject): OpenAPIObject {
  for (const { post: op } of Object.values(doc.paths)) {
    const body = op?.requestBody;
    if (!op || !(BINARY_ROWS in op) || !body || !('content' in body)) continue;
    delete (op as Record<string, unknown>)[BINARY_ROWS];
    body.content[TENSOR_CONTENT_TYPE] = { schema: { type: 'string', format: 'binary' } };
    body.description =
      'JSON (instances or records), or the rows as bytes with Content-Type application/octet-stream: ' +
      "float32 little-endian, row-major, the version's featureCount values per row, no header";
  }
  return doc;
}

/** A JSON success response typed by its contract. */
export const JsonResponse = (status: number, schema: z.ZodType, description: string) =>
  ApiResponse({ status, description, schema: openApiSchema(schema, 'output') });

/** A non-JSON success response (file download, SSE, Prometheus text). */
export const RawResponse = (contentType: string, description: string, format?: 'binary') =>
  ApiResponse({
    status: 200,
    description,
    content: { [contentType]: { schema: { type: 'string', ...(format ? { format } : {}) } } },
  });

/** The error bodies an operation may answer: each names the field and the reason. */
export const ErrorResponses = (...statuses: number[]) =>
  applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: ERROR_TEXT[status] ?? 'error',
        schema: openApiSchema(errorBodySchema, 'output'),
      }),
    ),
  );

const ERROR_TEXT: Record<number, string> = {
  400: 'invalid input: `issues` name each field and the reason',
  404: 'a referenced thing does not exist: `issues` name the field',
  409: 'conflicts with the current state (a job already ended, an Idempotency-Key used with another body)',
  410: 'a job id this system issued that it no longer keeps (history bounds, or Redis lost its data)',
  413: 'over a configured budget or the upload limit: the reason names the figure, the limit and its variable',
  429:
    'the tenant is at a quota (`quota` names it, its figure and limit), or a serve queue is full ' +
    '(SERVE_MAX_QUEUE, nothing ran): retry after Retry-After seconds',
  503: 'Redis is unreachable, or no serve replica answers: the message says which; retry after Retry-After seconds',
  504: 'no answer within SERVE_TIMEOUT_MS: its place in the queue was given back',
};

/** Query parameters documented from the contract that validates them, one per property. */
export function QueryFrom(schema: z.ZodObject): MethodDecorator {
  return applyDecorators(
    ...Object.entries(schema.shape).map(([name, field]) => {
      const json = openApiSchema(field as z.ZodType);
      const description = typeof json.description === 'string' ? json.description : undefined;
      return ApiQuery({
        name,
        required: !(field as z.ZodType).safeParse(undefined).success,
        schema: json,
        ...(description ? { description } : {}),
      });
    }),
  );
}
