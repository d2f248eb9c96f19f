import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { overloaded } from './inflight-limit';
import { isPredictPath } from './json-body';

const EXPLAIN_ROUTE = /^\/v1\/models\/[^/]+\/versions\/[^/]+\/explain\/?$/i;

export interface PredictGateOptions {
  /** Predicts (and explains) past the gate at once; 0: no gate. */
  limit: number;
  /** How long one waits for a slot before a 503 with Retry-After. */
  waitMs: number;
  retryAfterSeconds: number;
}

/**
 * At most `limit` predicts and explains at once in this API process, from arrival to answer; the
 * others wait here, in arrival order, before their body is read, checked or forwarded: a waiting
 * predict costs the event loop nothing, so a burst of them cannot take all of it from the API's
 * other routes (a job's status). A predict waits at most `waitMs` (then 503 with Retry-After); one
 * whose client goes away leaves the line. Placed after inflightLimit, so the waiting ones count
 * against MAX_INFLIGHT_REQUESTS. bench/serve measures the trade (API_MAX_CONCURRENT_PREDICTS).
 */
export function predictGate(opts: PredictGateOptions): RequestHandler & { readonly waiting: number } {
  let running = 0;
  const line: (() => void)[] = [];
  const release = () => {
    running--;
    line.shift()?.();
  };
  const gate = (req: Request, res: Response, next: NextFunction): void => {
    if (opts.limit <= 0 || req.method !== 'POST' || !(isPredictPath(req.path) || EXPLAIN_ROUTE.test(req.path)))
      return next();
    const start = () => {
      running++;
      res.once('close', release);
      next();
    };
    if (running < opts.limit) return start();
    const leave = () => {
      const i = line.indexOf(enter);
      if (i >= 0) line.splice(i, 1);
      clearTimeout(timer);
      res.off('close', leave);
    };
    const enter = () => {
      leave();
      start();
    };
    const timer = setTimeout(() => {
      leave();
      const reason =
        `no predict slot on this API within ${opts.waitMs} ms (API_MAX_CONCURRENT_PREDICTS ${opts.limit}, ` +
        'SERVE_TIMEOUT_MS): send heavy predict traffic to the serve replicas';
      overloaded(req, res, reason, opts.retryAfterSeconds);
    }, opts.waitMs);
    res.once('close', leave);
    line.push(enter);
  };
  /** Predicts waiting for a slot now. */
  return Object.defineProperty(gate, 'waiting', { get: () => line.length }) as typeof gate & {
    readonly waiting: number;
  };
}
