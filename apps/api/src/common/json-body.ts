import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { json } from 'express';
import { FieldError, prototypeKeyIn } from '@tq/contracts';
import type { AppConfig } from '@tq/config';

/**
 * The routes whose JSON bodies carry data: an infer job's inline instances (MAX_JSON_BODY_BYTES)
 * and an online predict's rows (MAX_PREDICT_BODY_BYTES: by version, by alias, and `name@alias`);
 * every other route takes MAX_SMALL_JSON_BODY_BYTES. Case-insensitive and with an optional
 * trailing slash, as express routes them: a path these miss gets the small limit.
 */
const INFER_ROUTE = /^\/v1\/jobs\/infer\/?$/i;
const PREDICT_ROUTES = [
  /^\/v1\/models\/[^/]+\/(versions|aliases)\/[^/]+\/predict\/?$/i,
  /^\/v1\/models\/[^/]+@[^/]+\/predict\/?$/i,
];

/** The limit a request's JSON body met, for the 413's message (res.locals.jsonLimit). */
export interface JsonLimit {
  bytes: number;
  setting: 'MAX_JSON_BODY_BYTES' | 'MAX_PREDICT_BODY_BYTES' | 'MAX_SMALL_JSON_BODY_BYTES';
}

/** The JSON body limit of a request's route. */
export function jsonLimitOf(config: AppConfig): (req: Request) => JsonLimit {
  const infer: JsonLimit = { bytes: config.MAX_JSON_BODY_BYTES, setting: 'MAX_JSON_BODY_BYTES' };
  const predict: JsonLimit = { bytes: config.MAX_PREDICT_BODY_BYTES, setting: 'MAX_PREDICT_BODY_BYTES' };
  const small: JsonLimit = { bytes: config.MAX_SMALL_JSON_BODY_BYTES, setting: 'MAX_SMALL_JSON_BODY_BYTES' };
  return (req) =>
    INFER_ROUTE.test(req.path) ? infer : PREDICT_ROUTES.some((route) => route.test(req.path)) ? predict : small;
}

/**
 * JSON bodies: parsed with the route's limit, then refused (400 naming the key's path) when any
 * object in them, at any depth, has a `__proto__`, `constructor` or `prototype` key. JSON.parse
 * keeps "__proto__" as an own property, harmless until some code spreads or merges the body:
 * refused at the edge, no handler has to think of it.
 */
export function jsonBodies(config: AppConfig): RequestHandler {
  const limitOf = jsonLimitOf(config);
  const parsers = new Map<number, RequestHandler>();
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = limitOf(req);
    const parser = parsers.get(limit.bytes) ?? json({ limit: limit.bytes });
    parsers.set(limit.bytes, parser);
    res.locals.jsonLimit = limit;
    parser(req, res, (err?: unknown) => {
      if (err) return next(err);
      const key = prototypeKeyIn(req.body);
      if (key === undefined) return next();
      const last = key.split('.').pop()!;
      next(new FieldError(key, `the key "${last}" is not allowed in a request body`));
    });
  };
}
