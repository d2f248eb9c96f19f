import type { Logger } from '@nestjs/common';
import { ThrottledLog, isSocketError } from '@tq/contracts';

/**
 * ioredis's ways of saying Redis is not there (as opposed to a command Redis refused): the offline
 * queue is disabled and the socket is not writeable, the connection closed under a command, a
 * command timed out, a command flushed after the reconnect attempts (MaxRetriesPerRequestError),
 * a socket error (ECONNREFUSED, ...), or BullMQ's "Connection is closed" of a closing client.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  if (isSocketError(err)) return true;
  return UNAVAILABLE_MESSAGES.some((m) => err.message.includes(m));
}

/** A command sent to a Redis that did not answer in time: unlike the others, it may still run later. */
export function isCommandTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

const UNAVAILABLE_MESSAGES = [
  "Stream isn't writeable",
  'Connection is closed',
  'Command timed out',
  'connect ETIMEDOUT',
  'LOADING ',
  // A Redis Cluster's: no node answers, or slots without a master.
  "Cluster isn't ready",
  'None of startup nodes is available',
  'Failed to refresh slots cache',
  'CLUSTERDOWN',
  // ioredis's give-up after retrying CLUSTERDOWN / MOVED while the cluster reconfigures.
  'Too many Cluster redirections',
];

/** The short cause of a connection error for a message: "ECONNREFUSED", "Command timed out". */
export function redisErrorCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // The offline queue's refusal says only that the socket is down, not why: the caller's last
  // connection error says more when it has one.
  if (err.message.startsWith("Stream isn't writeable")) return 'not connected';
  return (err as NodeJS.ErrnoException).code ?? err.message.replace(/\.$/, '');
}

/**
 * An 'error' listener that logs a repeated connection error once per `intervalMs` (with how many
 * were left out), not once per reconnect attempt: a Redis away for an hour is a handful of lines.
 */
export function throttledErrorLog(logger: Logger, what: string, intervalMs: number): (err: unknown) => void {
  const log = new ThrottledLog((line) => logger.warn(line), intervalMs);
  return (err) => void log.log(`${what}: ${redisErrorCause(err)}`);
}
