import { STATUS_CODES } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { AppConfig } from '@tq/config';
import { isTensorContentType } from '@tq/contracts';
import type { JsonLimit } from './json-body';

/** Seconds an overloaded replica asks a client to wait (requests in flight end in milliseconds). */
const RETRY_AFTER_SECONDS = 1;

/**
 * Bounds what this API replica holds at once, whatever the clients do (10,000 connections sending
 * at once included): at most MAX_INFLIGHT_REQUESTS requests, and at most MAX_INFLIGHT_JSON_BYTES
 * of JSON bodies being read and parsed (a body weighs its Content-Length, or its route's limit
 * when chunked; uploads stream to the store and weigh nothing). One request is always admitted
 * when none is in flight, so a single largest body still goes through. Beyond either bound: 503
 * with Retry-After, answered before the body is read. /health is not counted (probes must answer).
 * Memory per replica is then bounded by these two settings, not by the number of clients.
 */
export function inflightLimit(config: AppConfig, limitOf: (req: Request) => JsonLimit): RequestHandler {
  let requests = 0;
  let bytes = 0;
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.path === '/health') return next();
    const weight = jsonWeight(req, limitOf);
    const full =
      requests >= config.MAX_INFLIGHT_REQUESTS
        ? `${requests} requests are in flight on this API replica (MAX_INFLIGHT_REQUESTS ${config.MAX_INFLIGHT_REQUESTS})`
        : requests > 0 && bytes + weight > config.MAX_INFLIGHT_JSON_BYTES
          ? `the JSON bodies in flight on this API replica would pass MAX_INFLIGHT_JSON_BYTES (${config.MAX_INFLIGHT_JSON_BYTES})`
          : undefined;
    if (full) return overloaded(req, res, full);
    requests++;
    bytes += weight;
    // "close" comes once, whether the answer was sent or the client went away.
    res.once('close', () => {
      requests--;
      bytes -= weight;
    });
    next();
  };
}

/** Bytes a request's JSON body (or a predict's binary rows) may take while it is read and parsed. */
function jsonWeight(req: Request, limitOf: (req: Request) => JsonLimit): number {
  if (!req.is('application/json') && !req.is('+json') && !isTensorContentType(req.headers['content-type'])) return 0;
  const declared = Number(req.headers['content-length']);
  return Number.isFinite(declared) && declared >= 0 ? declared : limitOf(req).bytes;
}

/** 503 with Retry-After, answered before the body is read (the connection goes with it). */
export function overloaded(req: Request, res: Response, reason: string, retryAfterSeconds = RETRY_AFTER_SECONDS): void {
  res.setHeader('Retry-After', String(retryAfterSeconds));
  // The connection goes with the answer: the unread body is not worth reading.
  res.setHeader('Connection', 'close');
  res.status(503).json({
    statusCode: 503,
    error: STATUS_CODES[503],
    message: `server: ${reason}; retry after ${retryAfterSeconds} s`,
    issues: [{ field: 'server', reason }],
    // Set by the request-id middleware, which runs first (http-hardening).
    requestId: req.headers['x-request-id'],
  });
}
