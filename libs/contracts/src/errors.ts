import type { FieldIssue } from './validation';

/**
 * The error bases every edge sorts by `instanceof`: the API maps them to a status; in the worker a
 * TqError (bad input, a missing thing, a cancel) fails the job at once, since no retry can change
 * it. Anything that is not a TqError is an internal fault: a 500 at the API, a retry in the worker.
 */
export abstract class TqError extends Error {
  /** HTTP status when the error reaches the API. */
  abstract readonly status: number;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The client's input is wrong; `issues` name each field and the reason. 400, never retried. */
export class FieldError extends TqError {
  readonly status: number = 400;
  readonly issues: readonly FieldIssue[];

  constructor(field: string, reason: string);
  constructor(issues: readonly FieldIssue[]);
  constructor(fieldOrIssues: string | readonly FieldIssue[], reason = '') {
    const issues = typeof fieldOrIssues === 'string' ? [{ field: fieldOrIssues, reason }] : fieldOrIssues;
    super(issues.map((i) => `${i.field}: ${i.reason}`).join('; '));
    this.issues = issues;
  }

  /** The first issue's field, for logs and single-field callers. */
  get field(): string {
    return this.issues[0]?.field ?? '(body)';
  }

  get reason(): string {
    return this.issues[0]?.reason ?? this.message;
  }
}

/** A referenced thing (model, version, dataset, job, artifact) does not exist. 404, never retried. */
export class NotFoundError extends FieldError {
  override readonly status: number = 404;
}

/**
 * A job id this system issued (its tag verifies) that it can no longer find: removed after the
 * history bounds, or lost with Redis's data. 410, where an id never issued is a 404. A subclass of
 * NotFoundError, so code that treats a missing job as missing keeps doing so.
 */
export class GoneError extends NotFoundError {
  override readonly status: number = 410;
}

/** The request contradicts the state it meets (a repeated Idempotency-Key with another body, ...). 409. */
export class ConflictError extends FieldError {
  override readonly status: number = 409;
}

/** No valid credentials (missing, malformed, unknown, expired or revoked API key). 401. */
export class UnauthorizedError extends FieldError {
  override readonly status: number = 401;
}

/** Valid credentials whose role may not do this. 403 (another tenant's things are a 404 instead). */
export class ForbiddenError extends FieldError {
  override readonly status: number = 403;
}

/** Over a configured budget (parameters, bytes, epochs × rows, upload size). 413. */
export class TooLargeError extends FieldError {
  override readonly status: number = 413;
}

/** The job was cancelled (by request, in any stage). Never retried; reported as `cancelled`. */
export class CancelledError extends TqError {
  readonly status = 409;

  constructor(message = CANCELLED_REASON) {
    super(message);
  }
}

/** The text a cancelled job's failedReason carries; the API's state mapping reads it. */
export const CANCELLED_REASON = 'cancelled by request';

/**
 * Whether a failed job's reason says it was cancelled. BullMQ's failedReason is the error's
 * message, and every CancelledError's message starts with CANCELLED_REASON; a substring test
 * would also match a real failure whose message merely quotes it.
 */
export function isCancelledReason(reason: string | undefined): boolean {
  return reason?.startsWith(CANCELLED_REASON) ?? false;
}

/**
 * Throws once `signal` is aborted, with the abort's reason: a CancelledError for a cancel request,
 * or whatever else ended this attempt (its job lock was lost: the job goes on elsewhere, it is
 * not cancelled). Call between batches and stages.
 */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortReason(signal);
}

/**
 * For loops that take a `shouldStop()` (trainModel): true when the job was cancelled (the loop
 * ends with its own CancelledError), a throw of the reason when the attempt was aborted otherwise.
 */
export function cancelRequested(signal: AbortSignal): boolean {
  if (!signal.aborted) return false;
  const reason = abortReason(signal);
  if (reason instanceof CancelledError) return true;
  throw reason;
}

/** The error an abort carries; a bare `abort()` (reason: an AbortError) counts as a cancel. */
function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.name !== 'AbortError' ? reason : new CancelledError();
}

/**
 * Redis does not answer (down, unreachable, hung past REDIS_COMMAND_TIMEOUT_MS). The API answers
 * 503 with Retry-After. Deliberately not a TqError: it is transient, and a worker must retry it,
 * not fail the job for good.
 */
export class RedisUnavailableError extends Error {
  readonly status = 503;

  constructor(
    readonly address: string,
    readonly reason: string,
    /** Seconds a client should wait before trying again (the Retry-After header). */
    readonly retryAfterSeconds: number,
  ) {
    super(`Redis at ${address} is unreachable: ${reason}`);
    this.name = 'RedisUnavailableError';
  }
}

/**
 * A tenant is at one of its quotas (queued or active jobs, stored bytes, requests per second).
 * 429 with Retry-After; the body names the quota, the tenant's figure and its limit.
 */
export class QuotaExceededError extends FieldError {
  override readonly status: number = 429;

  constructor(
    readonly quota: string,
    readonly used: number,
    readonly limit: number,
    /** Seconds a client should wait before trying again (the Retry-After header). */
    readonly retryAfterSeconds: number,
    reason: string,
  ) {
    super(quota, reason);
  }
}

/**
 * A serve queue is full (admission control): the request was not accepted, nothing ran. 429 with
 * Retry-After; the client may send it again later, here or to another replica.
 */
export class OverloadedError extends FieldError {
  override readonly status: number = 429;

  constructor(
    field: string,
    reason: string,
    /** Seconds a client should wait before trying again (the Retry-After header). */
    readonly retryAfterSeconds: number,
  ) {
    super(field, reason);
  }
}

/**
 * An online request ran past its deadline (SERVE_TIMEOUT_MS): answered 504, and its place in the
 * queue given back. Not a client mistake, yet a TqError so the edges map it to its status.
 */
export class DeadlineError extends TqError {
  readonly status = 504;
}

/**
 * No serving capacity answers right now (every serve replica refused the connection or died
 * mid-request): 503 with Retry-After, never a hang.
 */
export class UnavailableError extends TqError {
  readonly status = 503;

  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
