import type { IncomingMessage, ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Registry } from 'prom-client';
import {
  FieldError,
  NotFoundError,
  checkedJsonBody,
  OverloadedError,
  UnauthorizedError,
  explainRequestSchema,
  isTensorContentType,
  modelNameSchema,
  checkedPredictJson,
  tenantSchema,
  tensorRowsOf,
  type ExplainRequest,
  type ExplainResponse,
  type ModelVersionMeta,
  type PredictInput,
} from '@tq/contracts';
import { ModelNotFoundError, type ModelRegistry } from '@tq/storage';
import { resolveServed, type AliasLookup } from '@tq/jobs';
import type { BatchedPredictor, PredictMetrics, ServeMetrics } from '@tq/serving';
import type { ClientDoor } from './client-door';
import { errorBody, readBody, send, sendError } from './http-io';
import { modelRouteOf, type RouteMatch } from './serve-routes';

/** Headers the API sends: the caller's tenant, trusted only with the shared serve key beside it. */
export const TENANT_HEADER = 'x-tq-tenant';
export const SERVE_KEY_HEADER = 'x-tq-serve-key';

export interface ServeHandlerDeps {
  registry: ModelRegistry;
  predictor: BatchedPredictor;
  /** Integrated gradients of a tenant's version (@tq/jobs explainVersion on this replica's engine). */
  explain(tenant: string, meta: ModelVersionMeta, body: ExplainRequest): Promise<ExplainResponse>;
  metrics: ServeMetrics;
  metricsRegistry: Registry;
  /** Predicts sent straight by clients, per served version and alias (the API counts the ones it forwards). */
  predictMetrics: PredictMetrics;
  /** The shared key (artifact store secret "serve-key"): with it, the API's tenant header is trusted. */
  serveKey: Buffer;
  /** Without the serve key: the client's API key and its tenant's request rate. */
  door: ClientDoor;
  /** Aliases (and canaries) of the predict paths that name one. */
  aliases: AliasLookup;
  /** JSON body limits: predicts take MAX_PREDICT_BODY_BYTES, explains MAX_SMALL_JSON_BODY_BYTES (as in the API). */
  maxPredictBodyBytes: number;
  maxSmallBodyBytes: number;
  /** At most this many requests, and this many bytes of JSON bodies, at once; beyond: 429. */
  maxInflightRequests: number;
  maxInflightJsonBytes: number;
  log: (message: string) => void;
}

/** The model and version a request's series is labelled with: empty until the version is found to exist. */
interface Labels {
  model: string;
  version: string;
}

/**
 * A serve replica's routes on bare node:http (nothing for a framework to add but per-request
 * cost): the API's predict and explain paths (serve-routes.ts), GET /metrics, GET /health. Two
 * doors: the API forwards with the serve key and the caller's tenant; a client sends its own API
 * key (ClientDoor: the same checks as the API's). Bodies are checked here with the same zod
 * contracts as in the API. Requests in flight and the JSON bytes they declare are bounded,
 * refused before the body is read.
 */
export function serveHandler(deps: ServeHandlerDeps) {
  const inflight = { requests: 0, bytes: 0 };
  return (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET' && path === '/health') return void send(res, 200, { status: 'ok' });
    if (req.method === 'GET' && path === '/metrics') {
      deps.metricsRegistry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': deps.metricsRegistry.contentType }).end(text),
        (err: unknown) => sendError(res, err, deps.log),
      );
      return;
    }
    const match = req.method === 'POST' ? modelRouteOf(path) : undefined;
    if (!match) return void send(res, 404, errorBody(404, '(path)', `no route ${req.method} ${path}`));
    const declared = Number(req.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? declared : deps.maxPredictBodyBytes;
    const full = overloadedBy(inflight, bytes, deps);
    if (full) {
      res.setHeader('Connection', 'close'); // the unread body is not worth reading
      return void sendError(res, full, deps.log);
    }
    inflight.requests++;
    inflight.bytes += bytes;
    res.once('close', () => {
      inflight.requests--;
      inflight.bytes -= bytes;
    });
    // Only versions that exist label a series: a client naming others cannot grow /metrics.
    const labels: Labels = { model: '', version: '' };
    answer(req, match, deps, labels).then(
      (body) => {
        deps.metrics.requests.inc({ ...labels, code: '200' });
        send(res, 200, body);
      },
      (err: unknown) => {
        const status = sendError(res, err, deps.log);
        deps.metrics.requests.inc({ ...labels, code: String(status) });
      },
    );
  };
}

/** An OverloadedError when one more request of `bytes` would pass a bound (one is always admitted). */
function overloadedBy(
  inflight: { requests: number; bytes: number },
  bytes: number,
  deps: ServeHandlerDeps,
): OverloadedError | undefined {
  const reason =
    inflight.requests >= deps.maxInflightRequests
      ? `${inflight.requests} requests are in flight on this serve replica (MAX_INFLIGHT_REQUESTS ${deps.maxInflightRequests})`
      : inflight.requests > 0 && inflight.bytes + bytes > deps.maxInflightJsonBytes
        ? `the JSON bodies in flight on this serve replica would pass MAX_INFLIGHT_JSON_BYTES (${deps.maxInflightJsonBytes})`
        : undefined;
  return reason ? new OverloadedError('server', reason, 1) : undefined;
}

/** The answer's body; `labels` are set once the version is found. */
async function answer(
  req: IncomingMessage,
  match: RouteMatch,
  deps: ServeHandlerDeps,
  labels: Labels,
): Promise<unknown> {
  const { tenant, direct } = await callerOf(req, match.route.action, deps);
  const name = modelNameSchema.safeParse(decoded(match.rawName, 'name'));
  if (!name.success) throw new FieldError('name', 'not a model name');
  const ref = match.route.schema.safeParse(decoded(match.rawRef, match.field));
  if (!ref.success) throw new FieldError(match.field, `not ${match.field === 'alias' ? 'an alias name' : 'a version'}`);
  const metaOf = async (version: number) => {
    const meta = await deps.registry
      .forTenant(tenant)
      .getVersion({ name: name.data, version })
      .catch((err: unknown) => {
        if (err instanceof ModelNotFoundError) throw new NotFoundError('version', err.reason);
        throw err;
      });
    Object.assign(labels, { model: meta.name, version: String(meta.version) });
    return meta;
  };
  const binary = isTensorContentType(req.headers['content-type']);
  if (match.route.kind === 'explain') {
    if (binary) throw new FieldError('content-type', 'explain takes a JSON body (application/json), not binary rows');
    const json = await readBody(req, { bytes: deps.maxSmallBodyBytes, setting: 'MAX_SMALL_JSON_BODY_BYTES' });
    const body = checkedJsonBody(explainRequestSchema, json);
    return deps.explain(tenant, await metaOf(Number(ref.data)), body);
  }
  const bytes = await readBody(req, { bytes: deps.maxPredictBodyBytes, setting: 'MAX_PREDICT_BODY_BYTES' });
  const body: PredictInput = binary ? tensorRowsOf(bytes) : checkedPredictJson(bytes);
  const served = await resolveServed(deps.aliases, tenant, name.data, String(ref.data));
  const meta = await metaOf(served.version);
  const run = () => deps.predictor.predict(tenant, meta, body);
  return direct ? deps.predictMetrics.observe(tenant, name.data, served, run) : run();
}

/** The API's forward (serve key and tenant header) or a client's own request (ClientDoor). */
async function callerOf(
  req: IncomingMessage,
  action: string,
  deps: ServeHandlerDeps,
): Promise<{ tenant: string; direct: boolean }> {
  const key = req.headers[SERVE_KEY_HEADER];
  if (key === undefined) return { tenant: (await deps.door.admit(req, action)).tenant, direct: true };
  const given = Buffer.from(typeof key === 'string' ? key : '');
  if (given.length !== deps.serveKey.length || !timingSafeEqual(given, deps.serveKey))
    throw new UnauthorizedError(SERVE_KEY_HEADER, 'wrong serve key (clients send their API key as Authorization)');
  const tenant = tenantSchema.safeParse(req.headers[TENANT_HEADER]);
  if (!tenant.success) throw new FieldError(TENANT_HEADER, 'missing or not a tenant name');
  return { tenant: tenant.data, direct: false };
}

/** A path segment, percent-decoded (a malformed escape is a 400 naming the field). */
function decoded(segment: string, field: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new FieldError(field, 'not a valid percent-encoded path segment');
  }
}
