import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { json } from 'express';
import { FieldError } from '@tq/contracts';
import type { AppConfig } from '@tq/config';

/**
 * The routes whose JSON bodies carry data (inline instances, records) and take
 * MAX_JSON_BODY_BYTES; every other route takes MAX_SMALL_JSON_BODY_BYTES. Case-insensitive and
 * with an optional trailing slash, as express routes them: a path these miss gets the small limit.
 */
const LARGE_JSON_ROUTES = [/^\/v1\/jobs\/infer\/?$/i, /^\/v1\/models\/[^/]+\/versions\/[^/]+\/predict\/?$/i];

/** The limit a request's JSON body met, for the 413's message (res.locals.jsonLimit). */
export interface JsonLimit {
  bytes: number;
  setting: 'MAX_JSON_BODY_BYTES' | 'MAX_SMALL_JSON_BODY_BYTES';
}

/** Keys that reach an object's prototype when a body is merged or assigned into another object. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * JSON bodies: parsed with the route's limit, then refused (400 naming the key's path) when any
 * object in them, at any depth, has a `__proto__`, `constructor` or `prototype` key. JSON.parse
 * keeps "__proto__" as an own property, harmless until some code spreads or merges the body:
 * refused at the edge, no handler has to think of it.
 */
export function jsonBodies(config: AppConfig): RequestHandler {
  const large: JsonLimit = { bytes: config.MAX_JSON_BODY_BYTES, setting: 'MAX_JSON_BODY_BYTES' };
  const small: JsonLimit = { bytes: config.MAX_SMALL_JSON_BODY_BYTES, setting: 'MAX_SMALL_JSON_BODY_BYTES' };
  const parsers = new Map([
    [large, json({ limit: large.bytes })],
    [small, json({ limit: small.bytes })],
  ]);
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = LARGE_JSON_ROUTES.some((route) => route.test(req.path)) ? large : small;
    res.locals.jsonLimit = limit;
    parsers.get(limit)!(req, res, (err?: unknown) => {
      if (err) return next(err);
      try {
        refusePrototypeKeys(req.body);
      } catch (refused) {
        return next(refused);
      }
      next();
    });
  };
}

/** Walks the parsed body without recursion (a deeply nested body cannot overflow the stack). */
export function refusePrototypeKeys(body: unknown): void {
  const stack: { value: unknown; path: string }[] = [{ value: body, path: '' }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value, path } = item;
    if (typeof value !== 'object' || value === null) continue;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++)
        if (typeof value[i] === 'object' && value[i] !== null)
          stack.push({ value: value[i], path: join(path, String(i)) });
      continue;
    }
    for (const key of Object.keys(value)) {
      if (PROTOTYPE_KEYS.has(key))
        throw new FieldError(join(path, key), `the key "${key}" is not allowed in a request body`);
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === 'object' && child !== null) stack.push({ value: child, path: join(path, key) });
    }
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
