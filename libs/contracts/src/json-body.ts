import type { z } from 'zod';
import { FieldError } from './errors';
import { MAX_INSTANCE_ROWS, MAX_ROW_VALUES, predictRequestSchema, type PredictRequest } from './infer.schema';
import { prototypeKeyIn } from './prototype-keys';
import { toFieldIssues } from './validation';

/**
 * A JSON body's bytes checked against its contract, as every edge that reads bytes itself checks
 * them (a serve replica; the API's predicts, which it reads unparsed so that a forwarded one is
 * not parsed twice): not JSON, a `__proto__`, `constructor` or `prototype` key at any depth, or
 * the contract's issues, each a 400 naming the field.
 */
export function checkedJsonBody<S extends z.ZodType>(schema: S, bytes: Uint8Array): z.output<S> {
  return checkedJson(schema, parsedJson(bytes));
}

/**
 * A predict's JSON body checked against predictRequestSchema, as checkedJsonBody does, with one
 * shortcut: `{"instances": [[numbers]]}` that is valid (numericRowsBody) is taken as parsed. Zod
 * copies every value it checks: for one row of 784 numbers it and the prototype-key walk took
 * 20-25 µs of a serve replica's 170 µs a JSON predict (a CPU profile under wrk), the check here
 * about 1 µs. Anything else, invalid rows included, goes through the contract, which names the field.
 */
export function checkedPredictJson(bytes: Uint8Array): PredictRequest {
  const json = parsedJson(bytes);
  return numericRowsBody(json) ? json : checkedJson(predictRequestSchema, json);
}

/**
 * Whether `json` is `{"instances": rows}` as predictRequestSchema accepts it: a plain object (as
 * JSON.parse makes them) with no other key, 1 to MAX_INSTANCE_ROWS rows, each 1 to MAX_ROW_VALUES
 * finite numbers. What it accepts the schema accepts, and returns unchanged
 * (libs/contracts/test/json-body.test.ts checks both).
 */
export function numericRowsBody(json: unknown): json is { instances: number[][] } {
  if (typeof json !== 'object' || json === null || Object.getPrototypeOf(json) !== Object.prototype) return false;
  const keys = Object.keys(json);
  if (keys.length !== 1 || keys[0] !== 'instances') return false;
  const rows = (json as { instances: unknown }).instances;
  if (!Array.isArray(rows) || rows.length < 1 || rows.length > MAX_INSTANCE_ROWS) return false;
  for (const row of rows as unknown[]) {
    if (!Array.isArray(row) || row.length < 1 || row.length > MAX_ROW_VALUES) return false;
    for (let i = 0; i < row.length; i++) {
      const value: unknown = row[i];
      if (typeof value !== 'number' || !Number.isFinite(value)) return false;
    }
  }
  return true;
}

function parsedJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown;
  } catch {
    throw new FieldError('(body)', 'not valid JSON');
  }
}

function checkedJson<S extends z.ZodType>(schema: S, json: unknown): z.output<S> {
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
