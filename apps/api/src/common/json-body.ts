import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { json, raw } from 'express';
import { FieldError, isTensorContentType, prototypeKeyIn, TENSOR_CONTENT_TYPE } from '@tq/contracts';
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

/** A predict route's path (by version, by alias, `name@ref`), as express routes them. */
export function isPredictPath(path: string): boolean {
  return PREDICT_ROUTES.some((route) => route.test(path));
}

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
  return (req) => (INFER_ROUTE.test(req.path) ? infer : isPredictPath(req.path) ? predict : small);
}

/**
 * JSON bodies: parsed with the route's limit, then refused (400 naming the key's path) when any
 * object in them, at any depth, has a `__proto__`, `constructor` or `prototype` key. JSON.parse
 * keeps "__proto__" as an own property, harmless until some code spreads or merges the body:
 * refused at the edge, no handler has to think of it. A predict's binary rows
 * (`application/octet-stream`, @tq/contracts tensor-body.ts) are read as bytes, within the same
 * limit; that type on another route is a 400 naming `content-type`.
 */
export function jsonBodies(config: AppConfig): RequestHandler {
  const limitOf = jsonLimitOf(config);
  const parsers = new Map<number, RequestHandler>();
  const binary = raw({ type: TENSOR_CONTENT_TYPE, limit: config.MAX_PREDICT_BODY_BYTES });
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = limitOf(req);
    res.locals.jsonLimit = limit;
    if (isTensorContentType(req.headers['content-type'])) {
      if (limit.setting === 'MAX_PREDICT_BODY_BYTES') return binary(req, res, next);
      return next(
        new FieldError('content-type', 'only predicts take binary rows (application/octet-stream): send JSON'),
      );
    }
    const parser = parsers.get(limit.bytes) ?? json({ limit: limit.bytes });
    parsers.set(limit.bytes, parser);
    parser(req, res, (err?: unknown) => {
      if (err) return next(err);
      const key = prototypeKeyIn(req.body);
      if (key === undefined) return next();
      const last = key.split('.').pop()!;
      next(new FieldError(key, `the key "${last}" is not allowed in a request body`));
    });
  };
}
