import { randomUUID } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { access, link, lstat, mkdir, open, opendir, realpath, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobExistsError, BlobKeyError, BlobNotFoundError, BlobRangeError, BlobStoreConfigError } from './blob-errors';
import { assertBlobKey, assertBlobPrefix, contentTypeFor, isBlobKey } from './blob-key';
import {
  clampRange,
  type BlobBody,
  type BlobEntry,
  type BlobHead,
  type BlobServe,
  type BlobStore,
  type BlobStream,
  type ByteRange,
  type PutOptions,
  type ServeOptions,
} from './blob-store';

/**
 * The blob store in a local folder (the embedded default: ARTIFACT_DIR, so a key is the path the
 * folder layout already has). A key maps to a path one segment per folder; writes go to a temp
 * file in the same folder and are renamed (or, for a create, hard-linked: link fails with EEXIST
 * when the name is taken, atomically) into place. Symlinks are never followed: a key whose folder
 * resolves outside the root, or whose file is a link, is refused. Files are owner-only (0600).
 */
export class LocalBlobStore implements BlobStore {
  readonly kind = 'local';
  readonly root: string;

  constructor(
    root: string,
    /** The setting the root came from, for start-up errors. */
    private readonly setting = 'ARTIFACT_DIR',
  ) {
    this.root = resolve(root);
  }

  get location(): string {
    return this.root;
  }

  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.W_OK);
    } catch (err) {
      throw new BlobStoreConfigError(this.setting, `folder ${this.root} is not writable: ${String(err)}`, {
        cause: err,
      });
    }
  }

  async put(key: string, body: BlobBody, options: PutOptions = {}): Promise<BlobHead> {
    const path = await this.pathFor(key, { create: true });
    // A name no key can have (keys never start with '.'), so list and a crash leave no visible trace.
    const tmp = join(dirname(path), `.${randomUUID()}.tmp`);
    try {
      // Owner-only (0600): the folder holds models, datasets and secrets (secrets/job-id-key).
      await pipeline(toReadable(body), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      await options.beforeCommit?.();
      if (options.ifNoneMatch === '*') {
        try {
          await link(tmp, path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BlobExistsError(key);
          throw err;
        }
      } else await rename(tmp, path);
    } finally {
      await rm(tmp, { force: true });
    }
    const head = await this.head(key);
    if (!head) throw new BlobNotFoundError(key); // deleted right after it was written
    return head;
  }

  async get(key: string): Promise<Buffer> {
    const handle = await this.openRead(key);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  }

  async stream(key: string, range?: ByteRange): Promise<BlobStream> {
    const handle = await this.openRead(key);
    try {
      // The size of the descriptor opened, so it belongs to the bytes streamed even when a rename
      // replaces the file meanwhile.
      const st = await handle.stat();
      const { contentType, etag } = headOf(key, st);
      if (!range) return { stream: handle.createReadStream(), size: st.size, totalSize: st.size, contentType, etag };
      const clamped = clampRange(range, st.size);
      if (!clamped) throw new BlobRangeError(key, range.start, st.size);
      return {
        stream: handle.createReadStream({ start: clamped.start, end: clamped.end }),
        size: clamped.end - clamped.start + 1,
        totalSize: st.size,
        range: clamped,
        contentType,
        etag,
      };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async head(key: string): Promise<BlobHead | undefined> {
    const path = await this.pathFor(key, { create: false });
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink()) throw new BlobKeyError(key, 'is a symlink');
      if (!st.isFile()) return undefined;
      return headOf(key, st);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobEntry> {
    assertBlobPrefix(prefix);
    const dir = prefix === '' ? this.root : await this.pathFor(prefix.slice(0, -1), { create: false });
    const st = await lstat(dir).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (st?.isSymbolicLink()) throw new BlobKeyError(prefix, 'is a symlink');
    if (st?.isDirectory()) yield* this.walk(dir, prefix);
  }

  async delete(key: string): Promise<void> {
    await rm(await this.pathFor(key, { create: false }), { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    if (assertBlobPrefix(prefix) === '') throw new BlobKeyError(prefix, 'deletePrefix needs a non-empty prefix');
    const dir = await this.pathFor(prefix.slice(0, -1), { create: false });
    // Renamed away first, so that readers see the whole prefix or none of it, then removed.
    const gone = join(dirname(dir), `.${randomUUID()}.deleting`);
    try {
      await rename(dir, gone);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    await rm(gone, { recursive: true, force: true });
  }

  async serve(key: string, options: ServeOptions = {}): Promise<BlobServe> {
    return { kind: 'stream', ...(await this.stream(key, options.range)) };
  }

  close(): void {}

  /** Walks in ascending key order (S3's, for general-purpose buckets): a folder's name sorts with its '/'. */
  private async *walk(dir: string, prefix: string): AsyncGenerator<BlobEntry> {
    let entries;
    try {
      const handle = await opendir(dir);
      entries = [];
      for await (const e of handle) entries.push(e);
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    const named = entries
      .filter((e) => (e.isFile() || e.isDirectory()) && isBlobKey(e.name))
      .map((e) => ({ e, sortName: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => (a.sortName < b.sortName ? -1 : a.sortName > b.sortName ? 1 : 0));
    for (const { e } of named) {
      const path = join(dir, e.name);
      if (e.isDirectory()) yield* this.walk(path, `${prefix}${e.name}/`);
      else {
        try {
          const st = await lstat(path);
          yield { key: `${prefix}${e.name}`, size: st.size, modified: st.mtimeMs };
        } catch (err) {
          if (!isMissing(err)) throw err; // deleted while listing: not listed
        }
      }
    }
  }

  /**
   * The path of a key, after checking that its folder, resolved through any symlink, is inside
   * the root (a link planted in the tree cannot lead a write or a read outside it). For a write the
   * folders are made only below the deepest one that exists and is inside, so not even an empty
   * folder appears outside the root.
   */
  private async pathFor(key: string, opts: { create: boolean }): Promise<string> {
    assertBlobKey(key);
    const path = join(this.root, ...key.split('/'));
    const dir = dirname(path);
    if (opts.create) await mkdir(this.root, { recursive: true });
    let realRoot: string;
    try {
      realRoot = await realpath(this.root);
    } catch (err) {
      if (isMissing(err)) return path; // no root yet: nothing to read or delete
      throw err;
    }
    const inside = (real: string) => real === realRoot || real.startsWith(realRoot + sep);
    // The deepest folder on the way that exists, resolved.
    let existing = dir;
    let real: string | undefined;
    for (;;) {
      try {
        real = await realpath(existing);
        break;
      } catch (err) {
        if (!isMissing(err) || existing === this.root) throw err;
        existing = dirname(existing);
      }
    }
    if (!inside(real)) throw new BlobKeyError(key, 'resolves outside the store (a symlink)');
    if (existing !== dir) {
      if (!opts.create) return path; // nothing there yet: reads find nothing, deletes do nothing
      await mkdir(join(real, dir.slice(existing.length + 1)), { recursive: true });
      real = await realpath(dir);
      if (!inside(real)) throw new BlobKeyError(key, 'resolves outside the store (a symlink)');
    }
    return join(real, path.slice(dir.length + 1));
  }

  private async openRead(key: string): Promise<FileHandle> {
    const path = await this.pathFor(key, { create: false });
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a symlink in the file's place fails (ELOOP) instead of being followed.
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isMissing(err)) throw new BlobNotFoundError(key);
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new BlobKeyError(key, 'is a symlink');
      throw err;
    }
    // A folder (a key that is also a prefix of others) opens fine on Linux: it is no object.
    if ((await handle.stat()).isFile()) return handle;
    await handle.close();
    throw new BlobNotFoundError(key);
  }
}

function headOf(key: string, st: { size: number; mtimeMs: number; ino: number }): BlobHead {
  return {
    size: st.size,
    etag: `"${st.ino.toString(16)}-${st.size.toString(16)}-${Math.trunc(st.mtimeMs * 1000).toString(16)}"`,
    contentType: contentTypeFor(key),
  };
}

function toReadable(body: BlobBody): Readable {
  if (typeof body === 'string' || body instanceof Uint8Array) return Readable.from([Buffer.from(body)]);
  if (body instanceof Readable) return body;
  return Readable.from(body);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
