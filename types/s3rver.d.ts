/** s3rver 3.x ships no types; this is the part of its API the tests and the bench use. */
declare module 's3rver' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: string[] }[];
  }

  class S3rver {
    constructor(options: S3rverOptions);
    configureBuckets(): Promise<void>;
    /** The Koa request handler (what `run()` would listen with). */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    store: { existsObject(bucket: string, key: string): Promise<boolean> };
    logger?: { exceptions: { unhandle(): void }; close(): void };
  }
  export = S3rver;
}
