/**
 * `promise`, or a rejection after `ms`. The command itself is not cancelled (ioredis's own
 * command timeout ends it); this only bounds how long a caller waits, e.g. /health's PING.
 */
export function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
