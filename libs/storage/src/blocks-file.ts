import { BlobNotFoundError } from './blob/blob-errors';
import type { BlobStore } from './blob/blob-store';

/**
 * One object holding a JSON header and named binary blocks: a 4-character magic, a little-endian
 * uint32 header length, the JSON header (which lists the blocks), then the blocks back to back,
 * stored with one atomic put. Checkpoints use it: one object rather than several, so a reader sees
 * the old state or the new one, never weights of one step with optimizer slots of another.
 */
export interface BlocksFile<H> {
  header: H;
  blocks: Record<string, ArrayBuffer>;
}

/** One object in a blob store (a checkpoint's), for code that passes it along without building keys. */
export interface BlobRef {
  readonly blobs: BlobStore;
  readonly key: string;
}

export async function writeBlocksFile<H>(
  { blobs, key }: BlobRef,
  magic: string,
  header: H,
  blocks: Record<string, ArrayBuffer | ArrayBufferView>,
  /** Runs right before the object becomes visible (a job's fence); a throw leaves the old one. */
  beforeCommit?: () => Promise<void>,
): Promise<void> {
  const names = Object.keys(blocks);
  const bytes = names.map((name) => {
    const b = blocks[name]!;
    return ArrayBuffer.isView(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b);
  });
  const json = Buffer.from(
    JSON.stringify({ header, blocks: names.map((name, i) => ({ name, bytes: bytes[i]!.length })) }),
    'utf8',
  );
  const prefix = Buffer.alloc(8);
  prefix.write(checkMagic(magic), 0, 'ascii');
  prefix.writeUInt32LE(json.length, 4);
  await blobs.put(key, Buffer.concat([prefix, json, ...bytes]), beforeCommit ? { beforeCommit } : {});
}

/** The object at `key`, or undefined when there is none; a wrong magic or a short object throws. */
export async function readBlocksFile<H>({ blobs, key }: BlobRef, magic: string): Promise<BlocksFile<H> | undefined> {
  let buf: Buffer;
  try {
    buf = await blobs.get(key);
  } catch (err) {
    if (err instanceof BlobNotFoundError) return undefined;
    throw err;
  }
  if (buf.length < 8 || buf.toString('ascii', 0, 4) !== checkMagic(magic))
    throw new Error(`${key} is not a ${magic} object`);
  const jsonLength = buf.readUInt32LE(4);
  const meta = JSON.parse(buf.toString('utf8', 8, 8 + jsonLength)) as {
    header: H;
    blocks: { name: string; bytes: number }[];
  };
  const blocks: Record<string, ArrayBuffer> = {};
  let offset = 8 + jsonLength;
  for (const { name, bytes } of meta.blocks) {
    // A copy: its own aligned ArrayBuffer, which typed arrays and tf.io.decodeWeights can view.
    blocks[name] = buf.buffer.slice(buf.byteOffset + offset, buf.byteOffset + offset + bytes) as ArrayBuffer;
    offset += bytes;
  }
  if (offset !== buf.length)
    throw new Error(`${key}: ${buf.length - offset} bytes unaccounted for (truncated or corrupt)`);
  return { header: meta.header, blocks };
}

function checkMagic(magic: string): string {
  if (!/^[A-Za-z0-9]{4}$/.test(magic))
    throw new Error(`a blocks-file magic is 4 ASCII letters or digits, not "${magic}"`);
  return magic;
}
