import { randomUUID } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import type { Stats } from 'node:fs';
import {
  access,
  link,
  lstat,
  mkdir,
  open,
  opendir,
  readdir,
  realpath,
  rename,
  rm,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  BlobExistsError,
  BlobKeyError,
  BlobNotFoundError,
  BlobRangeError,
  BlobStoreConfigError,
  BlobUnsafeFileError,
} from './blob-errors';
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
 * when the name is taken, atomically) into place. Links are never followed: under the root, a key
 * whose folder on the way is a symlink, or whose file is a symlink or a hard-linked file (a link
 * count over 1: the same bytes as some file elsewhere), is no object (BlobUnsafeFileError, a 404):
 * not read, not listed, and written over only by replacing the link itself. Files are owner-only (0600).
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
    let path: string;
    try {
      path = await this.pathFor(key, { create: false });
    } catch (err) {
      if (err instanceof BlobNotFoundError) return undefined;
      throw err;
    }
    try {
      const st = await lstat(path);
      if (!st.isFile() || !(await this.isOwnFile(path, st))) return undefined;
      return headOf(key, st);
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<BlobEntry> {
    assertBlobPrefix(prefix);
    let dir: string;
    try {
      dir = prefix === '' ? this.root : await this.pathFor(prefix.slice(0, -1), { create: false });
    } catch (err) {
      if (err instanceof BlobNotFoundError) return; // a linked folder on the way: nothing stored there
      throw err;
    }
    const st = await lstat(dir).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    // The root may be a link (ARTIFACT_DIR is configuration); a prefix folder that is one lists nothing.
    if (st?.isDirectory() || (prefix === '' && st?.isSymbolicLink())) yield* this.walk(dir, prefix);
  }

  async folders(prefix: string): Promise<string[]> {
    assertBlobPrefix(prefix);
    let dir: string;
    try {
      dir = prefix === '' ? this.root : await this.pathFor(prefix.slice(0, -1), { create: false });
    } catch (err) {
      if (err instanceof BlobNotFoundError) return []; // a linked folder on the way: nothing stored there
      throw err;
    }
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    });
    // Only real folders, as list() walks them: a planted link lists nothing.
    return entries.filter((e) => e.isDirectory() && isBlobKey(e.name)).map((e) => e.name);
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
          // A hard-linked file is no object of this store (the walk already skips symlinks: their
          // entries are neither files nor folders).
          if (st.isFile() && (await this.isOwnFile(path, st)))
            yield { key: `${prefix}${e.name}`, size: st.size, modified: st.mtimeMs };
        } catch (err) {
          if (!isMissing(err)) throw err; // deleted while listing: not listed
        }
      }
    }
  }

  /**
   * The path of a key, after checking each folder on its way below the root with lstat: a symlink
   * there (wherever it points, inside the root or out) fails a read with BlobUnsafeFileError and a
   * write with BlobKeyError, so no link planted in the tree leads a read or a write anywhere. The
   * root itself may be a link (it is configuration). For a write, missing folders are made one at
   * a time (mkdir never follows a link in the last place). A folder that does not exist yet: the
   * path, which reads find nothing at and deletes do nothing to.
   */
  private async pathFor(key: string, opts: { create: boolean }): Promise<string> {
    assertBlobKey(key);
    const segments = key.split('/');
    if (opts.create) await mkdir(this.root, { recursive: true });
    let dir: string;
    try {
      dir = await realpath(this.root);
    } catch (err) {
      if (isMissing(err)) return join(this.root, ...segments); // no root yet: nothing to read or delete
      throw err;
    }
    for (let i = 0; i < segments.length - 1; i++) {
      const segment = segments[i]!;
      dir = join(dir, segment);
      let st = await lstat(dir).catch((err: unknown) => {
        if (isMissing(err)) return undefined;
        throw err;
      });
      if (!st && !opts.create) return join(dir, ...segments.slice(i + 1));
      if (!st) {
        await mkdir(dir).catch((err: unknown) => {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        });
        st = await lstat(dir);
      }
      if (st.isSymbolicLink()) {
        if (opts.create) throw new BlobKeyError(key, 'a folder on its way is a symlink');
        throw new BlobUnsafeFileError(key, `folder ${JSON.stringify(segment)} is a symlink`);
      }
      if (!st.isDirectory()) {
        if (opts.create) throw new BlobKeyError(key, `${JSON.stringify(segment)} is not a folder`);
        throw new BlobNotFoundError(key);
      }
    }
    return join(dir, segments[segments.length - 1]!);
  }

  /**
   * Opens a key's file for reading: O_NOFOLLOW (a symlink in the file's place fails with ELOOP
   * instead of being followed), then the opened descriptor's own stat, so a swap between a check
   * and the open cannot slip a link in: a regular file with one link, or no object.
   */
  private async openRead(key: string): Promise<FileHandle> {
    const path = await this.pathFor(key, { create: false });
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isMissing(err)) throw new BlobNotFoundError(key);
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new BlobUnsafeFileError(key, 'is a symlink');
      throw err;
    }
    try {
      const st = await handle.stat();
      // A folder (a key that is also a prefix of others) opens fine on Linux: it is no object.
      if (!st.isFile()) throw new BlobNotFoundError(key);
      if (!(await this.isOwnFile(path, st))) throw new BlobUnsafeFileError(key, `is hard-linked (${st.nlink} links)`);
      return handle;
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * A file this store wrote has one link. The one exception is its own create (put with
   * ifNoneMatch), which links the finished temp file into place and then removes the temp name:
   * for that instant the file has two links, the other one a ".<uuid>.tmp" in the same folder.
   */
  private async isOwnFile(path: string, st: Stats): Promise<boolean> {
    if (st.nlink === 1) return true;
    if (st.nlink !== 2) return false;
    const dir = dirname(path);
    const names = await readdir(dir).catch(() => []);
    for (const name of names) {
      if (!TEMP_NAME.test(name)) continue;
      const other = await lstat(join(dir, name)).catch(() => undefined);
      if (other && other.ino === st.ino && other.dev === st.dev) return true;
    }
    return false;
  }
}

/** The temp name put() writes to before the object appears (never a key: keys do not start with '.'). */
const TEMP_NAME = /^\.[0-9a-f-]{36}\.tmp$/;

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
