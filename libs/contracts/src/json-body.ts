import type { z } from 'zod';
import { FieldError } from './errors';
import { prototypeKeyIn } from './prototype-keys';
import { toFieldIssues } from './validation';

/**
 * A JSON body's bytes checked against its contract, as every edge that reads bytes itself checks
 * them (a serve replica; the API's predicts, which it reads unparsed so that a forwarded one is
 * not parsed twice): not JSON, a `__proto__`, `constructor` or `prototype` key at any depth, or
 * the contract's issues, each a 400 naming the field.
 */
export function checkedJsonBody<S extends z.ZodType>(schema: S, bytes: Uint8Array): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
  } catch {
    throw new FieldError('(body)', 'not valid JSON');
  }
  const key = prototypeKeyIn(json);
  if (key !== undefined) throw new FieldError(key, prototypeKeyReason(key));
  const body = schema.safeParse(json);
  if (!body.success) throw new FieldError(toFieldIssues(body.error));
  return body.data;
}

/** Why a prototype key at `path` ("a.0.__proto__") is refused. */
export function prototypeKeyReason(path: string): string {
  return `the key "${path.split('.').pop()}" is not allowed in a request body`;
}
