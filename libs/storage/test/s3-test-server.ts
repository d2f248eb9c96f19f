import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { S3BlobStore, type S3BlobStoreOptions } from '@tq/storage';
import type { S3rverReply, S3rverRequest } from './s3rver-main';

/** s3rver's fixed credentials (it knows this access key id; it does not verify SigV4 signatures). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * A real S3 protocol server for tests and benches: s3rver (SigV4 requests, XML, multipart uploads,
 * ListObjectsV2 pages) behind a front that adds conditional writes (s3rver-front.ts), on a free
 * loopback port, in a temp folder. It runs in a child process started with
 * --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES, which
 * Node 20's OpenSSL 3 refuses otherwise (every truncated list page was a 500 in-process).
 */
export class S3TestServer {
  private nextId = 0;
  private readonly waiting = new Map<number, (value: number | null) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly endpoint: string,
    readonly bucket: string,
  ) {
    child.on('message', (m: S3rverReply) => {
      if ('id' in m) {
        this.waiting.get(m.id)?.(m.value);
        this.waiting.delete(m.id);
      }
    });
  }

  static async start(bucket = 'tq-test'): Promise<S3TestServer> {
    const child = fork(join(__dirname, 's3rver-main.js'), [bucket], {
      execArgv: ['--openssl-legacy-provider'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = new Promise<string>((done, fail) => {
      child.on('message', (m: S3rverReply) => {
        if ('ready' in m) done(m.ready);
      });
      child.once('exit', (code) => fail(new Error(`s3rver exited with ${code} before it was ready`)));
    });
    return new S3TestServer(child, await ready, bucket);
  }

  /** A store on this server (path-style, s3rver's credentials); `bucket` to name another one. */
  store(options: Partial<S3BlobStoreOptions> = {}): S3BlobStore {
    return new S3BlobStore({
      bucket: this.bucket,
      endpoint: this.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
      ...options,
    });
  }

  /** The settings that point the apps at this server (BLOB_STORE=s3 and S3_*), for their processes' env. */
  appEnv(): Record<string, string> {
    return {
      BLOB_STORE: 's3',
      S3_BUCKET: this.bucket,
      S3_ENDPOINT: this.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      S3_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
    };
  }

  /** Bytes the server has read from its sockets so far (request bodies and headers). */
  async bytesReceived(): Promise<number> {
    return (await this.ask({ op: 'bytesReceived' })) ?? 0;
  }

  /** ListObjectsV2 requests the server has answered (pagination really happened). */
  async listRequests(): Promise<number> {
    return (await this.ask({ op: 'listRequests' })) ?? 0;
  }

  /** Off: the server ignores If-None-Match on writes, as s3rver itself does. */
  async setConditionalWrites(on: boolean): Promise<void> {
    await this.ask({ op: 'conditionalWrites', value: on });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    await this.ask({ op: 'stop' });
    await exited;
  }

  private ask(
    request: { op: 'bytesReceived' | 'listRequests' | 'stop' } | { op: 'conditionalWrites'; value: boolean },
  ) {
    const id = ++this.nextId;
    return new Promise<number | null>((done) => {
      this.waiting.set(id, done);
      const message: S3rverRequest = { ...request, id };
      this.child.send(message);
    });
  }
}
