import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { json, raw } from 'express';
import type { z } from 'zod';
import {
  FieldError,
  checkedJsonBody,
  isTensorContentType,
  prototypeKeyIn,
  prototypeKeyReason,
  TENSOR_CONTENT_TYPE,
} from '@tq/contracts';
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
 * limit; that type on another route is a 400 naming `content-type`. A predict's JSON body is read
 * as bytes too (JsonBodyBytes, same limit), not parsed here: the API forwards most predicts to a
 * serve replica, which checks it against the same contract (bench/serve, one paired run: the
 * API's CPU per JSON predict through it went from 1.82 to 0.94 ms, a 784-value row no longer
 * parsed, checked and serialised again); one the API runs itself is checked where it runs
 * (checkedJsonBody).
 */
export function jsonBodies(config: AppConfig): RequestHandler {
  const limitOf = jsonLimitOf(config);
  const parsers = new Map<number, RequestHandler>();
  const binary = raw({ type: TENSOR_CONTENT_TYPE, limit: config.MAX_PREDICT_BODY_BYTES });
  const predictJson = raw({ type: 'application/json', limit: config.MAX_PREDICT_BODY_BYTES });
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = limitOf(req);
    res.locals.jsonLimit = limit;
    if (isTensorContentType(req.headers['content-type'])) {
      if (limit.setting === 'MAX_PREDICT_BODY_BYTES') return binary(req, res, next);
      return next(
        new FieldError('content-type', 'only predicts take binary rows (application/octet-stream): send JSON'),
      );
    }
    if (limit.setting === 'MAX_PREDICT_BODY_BYTES')
      return predictJson(req, res, (err?: unknown) => {
        if (Buffer.isBuffer(req.body)) req.body = new JsonBodyBytes(req.body);
        next(err);
      });
    const parser = parsers.get(limit.bytes) ?? json({ limit: limit.bytes });
    parsers.set(limit.bytes, parser);
    parser(req, res, (err?: unknown) => {
      if (err) return next(err);
      const key = prototypeKeyIn(req.body);
      if (key === undefined) return next();
      next(new FieldError(key, prototypeKeyReason(key)));
    });
  };
}

/**
 * A predict's JSON body as it came, unparsed (jsonBodies): forwarded to a serve replica as these
 * bytes, or checked against `schema` where the API runs the predict itself.
 */
export class JsonBodyBytes {
  constructor(readonly bytes: Buffer) {}

  checked<S extends z.ZodType>(schema: S): z.output<S> {
    return checkedJsonBody(schema, this.bytes);
  }
}
