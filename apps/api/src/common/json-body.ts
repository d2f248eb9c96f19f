import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { json, raw } from 'express';
import {
  FieldError,
  checkedPredictJson,
  isTensorContentType,
  prototypeKeyIn,
  prototypeKeyReason,
  TENSOR_CONTENT_TYPE,
  tensorRowsOf,
  type PredictInput,
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
 * refused at the edge, no handler has to think of it. A predict's body, binary rows
 * (`application/octet-stream`, @tq/contracts tensor-body.ts) or JSON, is read as bytes within
 * MAX_PREDICT_BODY_BYTES (PredictBodyBytes) and not decoded here: the API forwards most predicts
 * to a serve replica, which checks them against the same contract; one the API runs itself is
 * checked where it runs. Measured (a burst of 784-value rows through the API, three runs of the
 * parsing tree and this one, alternated): the API's CPU per JSON predict 1.72-2.25 ms before,
 * 1.34-1.61 ms after; binary rows 1.30-1.57 ms before, 1.21-1.28 ms after.
 * Binary rows on another route are a 400 naming `content-type`.
 */
export function jsonBodies(config: AppConfig): RequestHandler {
  const limitOf = jsonLimitOf(config);
  const parsers = new Map<number, RequestHandler>();
  const binary = raw({ type: TENSOR_CONTENT_TYPE, limit: config.MAX_PREDICT_BODY_BYTES });
  const predictJson = raw({ type: 'application/json', limit: config.MAX_PREDICT_BODY_BYTES });
  return (req: Request, res: Response, next: NextFunction) => {
    const limit = limitOf(req);
    res.locals.jsonLimit = limit;
    const tensor = isTensorContentType(req.headers['content-type']);
    if (limit.setting === 'MAX_PREDICT_BODY_BYTES')
      return (tensor ? binary : predictJson)(req, res, (err?: unknown) => {
        if (Buffer.isBuffer(req.body)) req.body = new PredictBodyBytes(req.body, tensor ? 'tensor' : 'json');
        next(err);
      });
    if (tensor)
      return next(
        new FieldError('content-type', 'only predicts take binary rows (application/octet-stream): send JSON'),
      );
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
 * A predict's body as it came, unchecked (jsonBodies): binary rows or JSON. A serve replica gets
 * these bytes and checks them; where the API runs the predict itself, `input()` checks them.
 */
export class PredictBodyBytes {
  constructor(
    readonly bytes: Buffer,
    readonly kind: 'tensor' | 'json',
  ) {}

  /** The predict's input (400 naming the field): rows decoded by tensorRowsOf, or JSON checked. */
  input(): PredictInput {
    return this.kind === 'tensor' ? tensorRowsOf(this.bytes) : checkedPredictJson(this.bytes);
  }
}
