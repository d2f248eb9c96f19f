import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from '../../../tools/free-port';

/**
 * s3rver (a real S3 protocol server: SigV4, XML, multipart, ListObjectsV2 pages) on a free loopback
 * port, in a temp folder. s3rver 3.7 ignores If-None-Match on writes (it reads it on GET only), so
 * a thin front adds what AWS S3 and MinIO do: a PutObject or CompleteMultipartUpload with
 * `If-None-Match: *` on an existing key answers 412 PreconditionFailed, one such write per key at a
 * time (S3's atomicity, emulated by a per-key lock here). `conditionalWrites = false` turns the
 * front off, to show that S3BlobStore.check() refuses a server that ignores the header.
 * It runs in its own process (s3rver-main.ts): see S3TestServer for why.
 */
export class S3rverFront {
  conditionalWrites = true;
  /** ListObjectsV2 requests seen (pagination really happened). */
  listRequests = 0;
  private readonly sockets = new Set<Socket>();
  private closedSocketBytes = 0;
  private readonly locks = new Map<string, Promise<void>>();

  /** http://127.0.0.1:<port>, once started. */
  endpoint = '';
  private readonly server: Server;

  private constructor(
    readonly bucket: string,
    private readonly s3rver: S3rver,
    private readonly dir: string,
  ) {
    const handler = s3rver.callback();
    this.server = createServer((req, res) => void this.handle(req, res, handler));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => {
        this.closedSocketBytes += socket.bytesRead;
        this.sockets.delete(socket);
      });
    });
  }

  static async start(bucket = 'tq-test', opts: { silent?: boolean } = {}): Promise<S3rverFront> {
    const dir = await mkdtemp(join(tmpdir(), 'tq-s3rver-'));
    const s3rver = new S3rver({ silent: opts.silent ?? true, directory: dir, configureBuckets: [{ name: bucket }] });
    await s3rver.configureBuckets();
    const front = new S3rverFront(bucket, s3rver, dir);
    const port = await freePort();
    await new Promise<void>((done, fail) => front.server.once('error', fail).listen(port, '127.0.0.1', done));
    front.endpoint = `http://127.0.0.1:${port}`;
    return front;
  }

  /** Bytes the server has read from its sockets so far (request bodies and headers). */
  bytesReceived(): number {
    let open = 0;
    for (const s of this.sockets) open += s.bytesRead;
    return this.closedSocketBytes + open;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((done) => this.server.close(() => done()));
    this.s3rver.logger?.exceptions.unhandle();
    this.s3rver.logger?.close();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async handle(
    req: IncomingMessage,
    res: ServerResponse,
    next: (req: IncomingMessage, res: ServerResponse) => void,
  ): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.searchParams.get('list-type') === '2') this.listRequests++;
    const conditional =
      this.conditionalWrites &&
      req.headers['if-none-match'] === '*' &&
      (req.method === 'PUT' || (req.method === 'POST' && url.searchParams.has('uploadId')));
    if (!conditional) return next(req, res);
    // Path style: /bucket/key...
    const [, bucket = '', ...rest] = url.pathname.split('/');
    const key = rest.map(decodeURIComponent).join('/');
    const id = `${bucket}/${key}`;
    const before = this.locks.get(id) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chain = before.then(() => mine);
    this.locks.set(id, chain);
    await before;
    res.once('close', () => {
      release();
      if (this.locks.get(id) === chain) this.locks.delete(id);
    });
    if (await this.s3rver.store.existsObject(bucket, key)) {
      req.resume();
      res.writeHead(412, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
          `<Condition>If-None-Match</Condition><Key>${key}</Key></Error>`,
      );
      return;
    }
    next(req, res);
  }
}
