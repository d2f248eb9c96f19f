import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** The paths of a metrics listener: the scrape, and a liveness answer that reads nothing. */
export const METRICS_PATH = '/metrics';
export const LIVENESS_PATH = '/livez';

/**
 * A process's own small listener, apart from any API port and without credentials: GET /metrics
 * (the registry's text) and GET /livez (200 while the event loop answers; it reads no Redis, so a
 * Redis outage restarts nobody). A worker's only port; the API's second one (API_METRICS_PORT), for
 * the cluster network. Unref'd: it never keeps a stopping process alive. A port that is taken
 * fails the start, as a bad setting should.
 */
export async function serveMetrics(
  registry: Registry,
  host: string,
  port: number,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === LIVENESS_PATH) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      return;
    }
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end(`not found: GET ${METRICS_PATH} or ${LIVENESS_PATH}\n`);
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return { server, port: (server.address() as AddressInfo).port };
}
