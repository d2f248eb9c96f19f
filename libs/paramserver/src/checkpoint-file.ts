import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '@tq/storage';

/**
 * One checkpoint = one file, written atomically (write + rename): 'TQPS', a little-endian uint32
 * header length, a JSON header, then the binary blocks the header lists, back to back. One file
 * rather than several, so a reader sees the old checkpoint or the new one, never weights of step s
 * with optimizer moments of step s - K.
 */
const MAGIC = 'TQPS';

export interface CheckpointContents<H> {
  header: H;
  blocks: Record<string, ArrayBuffer>;
}

export async function writeCheckpointFile<H>(path: string, header: H, blocks: Record<string, ArrayBuffer | ArrayBufferView>): Promise<void> {
  const names = Object.keys(blocks);
  const bytes = names.map((name) => {
    const b = blocks[name]!;
    return ArrayBuffer.isView(b) ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.from(b);
  });
  const json = Buffer.from(JSON.stringify({ header, blocks: names.map((name, i) => ({ name, bytes: bytes[i]!.length })) }), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.write(MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(json.length, 4);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, Buffer.concat([prefix, json, ...bytes]));
}

/** The checkpoint at `path`, or null when there is none. */
export async function readCheckpointFile<H>(path: string): Promise<CheckpointContents<H> | null> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (buf.length < 8 || buf.toString('ascii', 0, 4) !== MAGIC) throw new Error(`${path} is not a parameter-server checkpoint`);
  const jsonLen = buf.readUInt32LE(4);
  const meta = JSON.parse(buf.toString('utf8', 8, 8 + jsonLen)) as { header: H; blocks: { name: string; bytes: number }[] };
  const blocks: Record<string, ArrayBuffer> = {};
  let o = 8 + jsonLen;
  for (const { name, bytes } of meta.blocks) {
    // A copy: its own aligned ArrayBuffer, which typed arrays and tf.io.decodeWeights can view.
    blocks[name] = buf.buffer.slice(buf.byteOffset + o, buf.byteOffset + o + bytes) as ArrayBuffer;
    o += bytes;
  }
  if (o !== buf.length) throw new Error(`${path}: ${buf.length - o} bytes unaccounted for (truncated or corrupt)`);
  return { header: meta.header, blocks };
}
