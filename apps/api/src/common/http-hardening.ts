import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import type { AppConfig } from '@tq/config';
import { requestIdFrom } from '../jobs/job-meta';
import { inflightLimit } from './inflight-limit';
import { jsonBodies, jsonLimitOf } from './json-body';
import { predictGate } from './predict-gate';

/**
 * Hardened HTTP, applied before any route: a request id on every request and response, a bound on
 * the requests and JSON bytes in flight (inflightLimit), on the predicts worked on at once
 * (predictGate), security
 * headers (helmet), CORS only for the configured origins, and JSON bodies parsed with a per-route
 * size limit and refused when they carry prototype keys. Call before the app's init.
 */
export function hardenHttp(app: NestExpressApplication, config: AppConfig): void {
  app.use(requestIds);
  app.use(inflightLimit(config, jsonLimitOf(config)));
  app.use(
    predictGate({
      limit: config.API_MAX_CONCURRENT_PREDICTS,
      waitMs: config.SERVE_TIMEOUT_MS,
      retryAfterSeconds: config.SERVE_RETRY_AFTER_SECONDS,
    }),
  );
  app.use(securityHeaders());
  if (config.CORS_ORIGINS?.length)
    app.enableCors({
      origin: config.CORS_ORIGINS,
      // Credentials are bearer tokens in a header, never cookies: no Allow-Credentials.
      credentials: false,
      exposedHeaders: ['X-Request-Id', 'Retry-After', 'Location'],
      maxAge: 600,
    });
  app.use(jsonBodies(config));
  // No "X-Powered-By: Express" (helmet removes it per response; this stops it at the source).
  app.disable('x-powered-by');
}

/**
 * The client's X-Request-Id when it is a plain token, else a new UUID (the rule jobs' meta
 * follows): written back into the request, so the job, the logs and the error body carry the same
 * id as the response header.
 */
function requestIds(req: Request, res: Response, next: NextFunction): void {
  const header = req.headers['x-request-id'];
  const id = requestIdFrom(typeof header === 'string' ? header : undefined);
  req.headers['x-request-id'] = id;
  res.setHeader('X-Request-Id', id);
  next();
}

/** The request id set by `requestIds`, for error bodies and log lines. */
export function requestIdOf(req: Request): string {
  const id = req.headers['x-request-id'];
  return typeof id === 'string' ? id : 'unknown';
}

/**
 * helmet's defaults (CSP default-src 'self', script-src 'self', no framing by other origins,
 * nosniff, no referrer, HSTS...) on every path, the two browser pages included: Swagger UI (/docs)
 * and bull-board (/admin/queues) load only their own assets from the API and run no inline script,
 * so neither needs a looser policy (test/dashboard.test.ts checks both render with no CSP
 * violation). One change: no `upgrade-insecure-requests`, since the API is served over plain HTTP
 * on a trusted network or behind a TLS proxy, where upgrading the pages' requests would break them.
 */
function securityHeaders(): RequestHandler {
  return helmet({ contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': null } } });
}
