import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** A loopback port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
  });
}

/** Whether a loopback listener can take `port` now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/**
 * A free loopback port below the kernel's ephemeral range (ip_local_port_range), for a server that
 * some other process starts later: a port from freePort() lies in that range, and between the pick
 * and the listen any outgoing connection on the host may take it as its local port (a compose run
 * on the host network lost its API that way: EADDRINUSE). Ports below the range are never handed
 * out to connections.
 */
export async function freeListeningPort(): Promise<number> {
  const range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const below = Math.min(range[0] ?? 32768, 65536);
  const from = 10_000;
  if (below - from < 1000) return freePort(); // an unusual range: the OS's pick, as before
  for (let tries = 0; tries < 200; tries++) {
    const port = from + Math.floor(Math.random() * (below - from));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port between ${from} and ${below - 1} after 200 tries`);
}
