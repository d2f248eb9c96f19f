import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { AppConfig } from '@tq/config';
import { DASHBOARD_ROUTE } from '../dashboard/dashboard.module';
import { requestIdFrom } from '../jobs/job-meta';
import { jsonBodies } from './json-body';

/** The browser pages the API serves (Swagger UI and bull-board): the only paths with a looser CSP. */
export const UI_ROUTES = ['/docs', DASHBOARD_ROUTE];

/**
 * Hardened HTTP, applied before any route: a request id on every request and response, security
 * headers (helmet), CORS only for the configured origins, and JSON bodies parsed with a per-route
 * size limit and refused when they carry prototype keys. Call before the app's init.
 */
export function hardenHttp(app: NestExpressApplication, config: AppConfig): void {
  app.use(requestIds);
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
 * helmet's defaults everywhere (a JSON API needs no script, style or frame), except:
 * - no `upgrade-insecure-requests`: the API is served over plain HTTP on a trusted network or
 *   behind a TLS proxy; upgrading the UIs' own requests would break them on http://;
 * - the two UIs get `script-src 'self' 'unsafe-inline'`: Swagger UI's page and bull-board's
 *   index run a short inline script; their other assets come from the API itself.
 */
function securityHeaders(): (req: Request, res: Response, next: NextFunction) => void {
  const base = { 'upgrade-insecure-requests': null };
  const api = helmet({ contentSecurityPolicy: { directives: base } });
  const ui = helmet({
    contentSecurityPolicy: { directives: { ...base, 'script-src': ["'self'", "'unsafe-inline'"] } },
  });
  return (req, res, next) => {
    const path = req.path.toLowerCase();
    const isUi = UI_ROUTES.some(
      (route) => path === route || path.startsWith(`${route}/`) || path.startsWith(`${route}-`),
    );
    (isUi ? ui : api)(req, res, next);
  };
}
