import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import {
  FieldError,
  NotFoundError,
  OverloadedError,
  TooLargeError,
  TqError,
  UnauthorizedError,
  modelNameSchema,
  modelVersionSchema,
  predictRequestSchema,
  prototypeKeyIn,
  tenantSchema,
  toFieldIssues,
} from '@tq/contracts';
import { ModelNotFoundError, type ModelRegistry } from '@tq/storage';
import type { BatchedPredictor, ServeMetrics } from '@tq/serving';

/** Headers the API sends: the caller's tenant, trusted only with the shared serve key beside it. */
export const TENANT_HEADER = 'x-tq-tenant';
export const SERVE_KEY_HEADER = 'x-tq-serve-key';

const PREDICT_PATH = /^\/v1\/models\/([^/]+)\/versions\/([^/]+)\/predict\/?$/;

export interface ServeHandlerDeps {
  registry: ModelRegistry;
  predictor: BatchedPredictor;
  metrics: ServeMetrics;
  metricsRegistry: Registry;
  /** The shared key (artifact store secret "serve-key"); a request without it is refused 401. */
  serveKey: Buffer;
  maxBodyBytes: number;
  retryAfterSeconds: number;
  log(message: string): void;
}

/**
 * A serve replica's routes on bare node:http (one data route, nothing for a framework to add but
 * per-request cost): POST /v1/models/:name/versions/:version/predict (the API's path, so a
 * forwarded request keeps its URL), GET /metrics, GET /health. Bodies are checked here again with
 * the same zod contract: the API validated them, but a replica answers anyone holding the key.
 */
export function serveHandler(deps: ServeHandlerDeps) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && path === '/health') return void send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/metrics') {
      deps.metricsRegistry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': deps.metricsRegistry.contentType }).end(text),
        (err: unknown) => sendError(res, err, deps),
      );
      return;
    }
    const m = PREDICT_PATH.exec(path);
    if (req.method !== 'POST' || !m)
      return void send(res, 404, errorBody(404, '(path)', `no route ${req.method} ${path}`));
    predict(req, m[1]!, m[2]!, deps).then(
      ({ status, body, labels }) => {
        deps.metrics.requests.inc({ ...labels, code: String(status) });
        send(res, status, body);
      },
      (err: unknown) => {
        const status = sendError(res, err, deps);
        deps.metrics.requests.inc({ model: m[1]!, version: m[2]!, code: String(status) });
      },
    );
  };
}

async function predict(
  req: IncomingMessage,
  rawName: string,
  rawVersion: string,
  deps: ServeHandlerDeps,
): Promise<{ status: number; body: unknown; labels: { model: string; version: string } }> {
  const key = req.headers[SERVE_KEY_HEADER];
  const given = Buffer.from(typeof key === 'string' ? key : '');
  if (given.length !== deps.serveKey.length || !timingSafeEqual(given, deps.serveKey))
    throw new UnauthorizedError(SERVE_KEY_HEADER, 'missing or wrong: a serve replica answers the API only');
  const tenant = tenantSchema.safeParse(req.headers[TENANT_HEADER]);
  if (!tenant.success) throw new FieldError(TENANT_HEADER, 'missing or not a tenant name');
  const name = modelNameSchema.safeParse(decodeURIComponent(rawName));
  if (!name.success) throw new FieldError('name', 'not a model name');
  const version = modelVersionSchema.safeParse(rawVersion);
  if (!version.success) throw new FieldError('version', 'not a version number');
  const json = await readJson(req, deps.maxBodyBytes);
  const protoKey = prototypeKeyIn(json);
  if (protoKey !== undefined) throw new FieldError(protoKey, 'this key is not allowed in a request body');
  const body = predictRequestSchema.safeParse(json);
  if (!body.success) throw new FieldError(toFieldIssues(body.error));
  const ref = { name: name.data, version: version.data };
  const meta = await deps.registry
    .forTenant(tenant.data)
    .getVersion(ref)
    .catch((err: unknown) => {
      if (err instanceof ModelNotFoundError) throw new NotFoundError('version', err.reason);
      throw err;
    });
  const answer = await deps.predictor.predict(tenant.data, meta, body.data);
  return { status: 200, body: answer, labels: { model: ref.name, version: String(ref.version) } };
}

/** The body as JSON, refused (413) past maxBytes without buffering the rest. */
async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      req.destroy();
      throw new TooLargeError('(body)', `larger than the JSON body limit of ${maxBytes} bytes (MAX_JSON_BODY_BYTES)`);
    }
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new FieldError('(body)', 'not valid JSON');
  }
}

function errorBody(status: number, field: string, reason: string): object {
  return {
    statusCode: status,
    error: STATUS_CODES[status],
    message: `${field}: ${reason}`,
    issues: [{ field, reason }],
  };
}

/** TqErrors answer their status (429 with Retry-After); anything else a logged 500 saying nothing of the cause. */
function sendError(res: ServerResponse, err: unknown, deps: ServeHandlerDeps): number {
  if (err instanceof OverloadedError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
  if (err instanceof FieldError) {
    send(res, err.status, {
      statusCode: err.status,
      error: STATUS_CODES[err.status],
      message: err.message,
      issues: err.issues,
    });
    return err.status;
  }
  if (err instanceof TqError) {
    send(res, err.status, { statusCode: err.status, error: STATUS_CODES[err.status], message: err.message });
    return err.status;
  }
  deps.log(`predict failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  send(res, 500, { statusCode: 500, error: 'Internal Server Error', message: 'internal error' });
  return 500;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}
