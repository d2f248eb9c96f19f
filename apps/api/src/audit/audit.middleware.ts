import type { NextFunction, Response } from 'express';
import type { AuditRecord } from '@tq/contracts';
import type { AuthedRequest } from '../auth/auth.service';
import type { AuditService } from './audit.service';

/** Methods that change nothing: audited only when refused (401, 403). */
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/**
 * POSTs that change nothing: a prediction reads a model (a viewer may ask for one). Audited only
 * when refused, like a GET: recorded, 100 predicts a second would add ~1.6 GB a day to the log.
 */
const READ_ONLY_POST = /\/(predict|explain)$/;
/** X-Request-Id as a client may choose it (the jobs keep the same ones). */
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Registered first in main.ts, so it sees every request: Nest's routes, the dashboard's and the
 * docs' express routes, a body the parser refused, a path nothing serves. When the response is
 * done (or the client went away) it records every state-changing request and every auth failure.
 * The write runs in the background: the request is never held up or failed by it.
 */
export function auditMiddleware(audit: AuditService) {
  return (req: AuthedRequest, res: Response, next: NextFunction): void => {
    const changes = !READS.has(req.method) && !(req.method === 'POST' && READ_ONLY_POST.test(req.path));
    let answeredId: string | undefined;
    if (changes) {
      // The id a created thing got (job, dataset, key) is only in the answer: keep that one field.
      const json = res.json.bind(res);
      res.json = ((body: unknown) => {
        answeredId = idOf(body);
        return json(body);
      }) as Response['json'];
    }
    // "close" comes after "finish" for an answered request, and alone for one the client left.
    res.once('close', () => {
      const result = res.statusCode;
      if (!changes && result !== 401 && result !== 403) return;
      audit.record(recordOf(req, res, result >= 200 && result < 300 ? answeredId : undefined));
    });
    next();
  };
}

function recordOf(req: AuthedRequest, res: Response, answeredId: string | undefined): AuditRecord {
  const principal = req.principal;
  const target = targetOf(req.params, answeredId);
  const requestId = requestIdOf(req, res);
  const client = req.ip ?? req.socket.remoteAddress;
  return {
    action: `${req.method} ${routeOf(req)}`,
    result: res.statusCode,
    ...(requestId ? { requestId } : {}),
    ...(principal ? { keyId: principal.keyId, tenant: principal.tenant, role: principal.role } : {}),
    ...(target ? { target } : {}),
    ...(client ? { client } : {}),
    ...(res.writableFinished ? {} : { incomplete: true }),
  };
}

/**
 * The route pattern express matched ("/v1/jobs/:id", the dashboard's "/admin/queues/api/queues/
 * :queueName/:jobId/retry/:queueStatus"), so that one action reads the same for every id; the
 * path itself where no route matched (a 401 of a guarding middleware, a 404).
 */
function routeOf(req: AuthedRequest): string {
  const path: unknown = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof path === 'string') return req.baseUrl + path;
  return req.originalUrl.split('?')[0] ?? req.originalUrl;
}

/** The path's parameters, and the id the answer named unless the path has one. */
function targetOf(params: unknown, answeredId: string | undefined): Record<string, string> | undefined {
  const target: Record<string, string> = {};
  if (params && typeof params === 'object')
    for (const [name, value] of Object.entries(params)) if (typeof value === 'string') target[name] = value;
  if (answeredId !== undefined && target.id === undefined) target.id = answeredId;
  return Object.keys(target).length > 0 ? target : undefined;
}

function idOf(body: unknown): string | undefined {
  const id = body && typeof body === 'object' ? (body as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : undefined;
}

/** As the API answered it (a request-id middleware sets the header), else as the client sent it. */
function requestIdOf(req: AuthedRequest, res: Response): string | undefined {
  const answered = res.getHeader('x-request-id');
  if (typeof answered === 'string') return answered;
  const sent = req.headers['x-request-id'];
  return typeof sent === 'string' && SAFE_REQUEST_ID.test(sent) ? sent : undefined;
}
