import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { BlobIntegrityError, BlobKeyUnavailableError } from '../blob-errors';

/**
 * The stored format of an encrypted object (envelope encryption, AES-256-GCM from node:crypto):
 *
 *   header (HEADER_SIZE bytes, fixed):
 *     magic "\x89TQE" | version (1) | key id length (1) | key id (32, zero padded)
 *     | chunk nonce prefix (8) | wrap nonce (12) | data key sealed under the master key (32) | its tag (16)
 *   chunks: the plaintext in CHUNK_SIZE pieces (the last one shorter, or empty for an empty object),
 *     each sealed with the data key: ciphertext | tag (16).
 *
 * Each object has its own random data key, so a master key seals only 32-byte keys (never near
 * GCM's per-key limits) and rotation needs no re-encryption of bodies to start. The wrap's AAD is
 * the header before the wrapped key plus the blob key: the key id and nonce prefix cannot be
 * edited, and an object's bytes moved under another key fail. Each chunk's nonce is the prefix
 * plus its index, and its AAD the index, a final-chunk flag and the blob key: reordered, dropped,
 * truncated (the new last chunk was not sealed as final) or flipped bytes fail their tag.
 *
 * Fixed header and chunk sizes make the plaintext size a function of the stored size, so head and
 * list answer it without reading the object, and a plaintext byte range maps to whole chunks.
 */
export const MAGIC = Buffer.from([0x89, 0x54, 0x51, 0x45]); // "\x89TQE": not text, so no CSV or JSON starts so
export const FORMAT_VERSION = 1;
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const SEALED_CHUNK = CHUNK_SIZE + TAG_SIZE;
const KEY_ID_FIELD = 32;
const NONCE_PREFIX = 8;
const WRAP_NONCE = 12;
const DATA_KEY = 32;
const OFF_KEY_ID_LEN = MAGIC.length + 1;
const OFF_KEY_ID = OFF_KEY_ID_LEN + 1;
const OFF_NONCE_PREFIX = OFF_KEY_ID + KEY_ID_FIELD;
const OFF_WRAP_NONCE = OFF_NONCE_PREFIX + NONCE_PREFIX;
const OFF_WRAPPED = OFF_WRAP_NONCE + WRAP_NONCE;
const OFF_WRAP_TAG = OFF_WRAPPED + DATA_KEY;
export const HEADER_SIZE = OFF_WRAP_TAG + TAG_SIZE;
/** The chunk counter is 32 bits of the nonce: 2^32 chunks of 64 KiB, 256 TiB per object. */
const MAX_CHUNKS = 2 ** 32;

export interface MasterKey {
  id: string;
  key: Buffer;
}

/** Stored size of an object of `plain` bytes. */
export function sealedSize(plain: number): number {
  return HEADER_SIZE + plain + TAG_SIZE * chunkCount(plain);
}

/** Chunks an object of `plain` bytes has: at least one (an empty object is one empty sealed chunk). */
export function chunkCount(plain: number): number {
  return Math.max(1, Math.ceil(plain / CHUNK_SIZE));
}

/** The plaintext size of a stored object of `stored` bytes, or undefined when no object this format writes has that size. */
export function plainSize(stored: number): number | undefined {
  const body = stored - HEADER_SIZE;
  if (body < TAG_SIZE) return undefined;
  const chunks = Math.ceil(body / SEALED_CHUNK);
  const last = body - (chunks - 1) * SEALED_CHUNK;
  // Only an empty object ends in an empty chunk; the writer never appends one after full chunks.
  if (last < TAG_SIZE || (chunks > 1 && last === TAG_SIZE)) return undefined;
  return body - chunks * TAG_SIZE;
}

/** Whether stored bytes start like this format (the rest of the header is checked by the wrap's tag). */
export function hasMagic(bytes: Buffer): boolean {
  return bytes.length >= MAGIC.length && bytes.subarray(0, MAGIC.length).equals(MAGIC);
}

/** The per-object keys: the data key and the nonce prefix, for sealing or opening chunks. */
export class ObjectKeys {
  private constructor(
    private readonly blobKey: string,
    private readonly dataKey: Buffer,
    private readonly noncePrefix: Buffer,
  ) {}

  /** A fresh data key for a new object under `master`, and the header that carries it. */
  static create(blobKey: string, master: MasterKey): { keys: ObjectKeys; header: Buffer } {
    const header = Buffer.alloc(HEADER_SIZE);
    MAGIC.copy(header, 0);
    header[MAGIC.length] = FORMAT_VERSION;
    const id = Buffer.from(master.id, 'utf8');
    if (id.length > KEY_ID_FIELD) throw new Error(`key id "${master.id}" is longer than ${KEY_ID_FIELD} bytes`);
    header[OFF_KEY_ID_LEN] = id.length;
    id.copy(header, OFF_KEY_ID);
    randomBytes(NONCE_PREFIX).copy(header, OFF_NONCE_PREFIX);
    randomBytes(WRAP_NONCE).copy(header, OFF_WRAP_NONCE);
    const dataKey = randomBytes(DATA_KEY);
    const wrap = createCipheriv('aes-256-gcm', master.key, header.subarray(OFF_WRAP_NONCE, OFF_WRAPPED));
    wrap.setAAD(wrapAad(header, blobKey));
    const wrapped = Buffer.concat([wrap.update(dataKey), wrap.final()]);
    wrapped.copy(header, OFF_WRAPPED);
    wrap.getAuthTag().copy(header, OFF_WRAP_TAG);
    const keys = new ObjectKeys(blobKey, dataKey, Buffer.from(header.subarray(OFF_NONCE_PREFIX, OFF_WRAP_NONCE)));
    return { keys, header };
  }

  /**
   * The data key of a stored object from its header: BlobIntegrityError when the header is not
   * one this format wrote for this blob key, BlobKeyUnavailableError when its key id is not listed.
   */
  static open(blobKey: string, header: Buffer, masters: ReadonlyMap<string, Buffer>): ObjectKeys {
    if (header.length < HEADER_SIZE || !hasMagic(header)) throw new BlobIntegrityError(blobKey, 'no encryption header');
    if (header[MAGIC.length] !== FORMAT_VERSION)
      throw new BlobIntegrityError(blobKey, `unknown format version ${header[MAGIC.length]}`);
    const idLength = header[OFF_KEY_ID_LEN]!;
    if (idLength === 0 || idLength > KEY_ID_FIELD) throw new BlobIntegrityError(blobKey, 'bad key id length');
    const id = header.subarray(OFF_KEY_ID, OFF_KEY_ID + idLength).toString('utf8');
    const master = masters.get(id);
    if (!master) throw new BlobKeyUnavailableError(blobKey, id);
    const unwrap = createDecipheriv('aes-256-gcm', master, header.subarray(OFF_WRAP_NONCE, OFF_WRAPPED));
    unwrap.setAAD(wrapAad(header, blobKey));
    unwrap.setAuthTag(header.subarray(OFF_WRAP_TAG, HEADER_SIZE));
    let dataKey: Buffer;
    try {
      dataKey = Buffer.concat([unwrap.update(header.subarray(OFF_WRAPPED, OFF_WRAP_TAG)), unwrap.final()]);
    } catch {
      throw new BlobIntegrityError(blobKey, `the data key does not unwrap under key id "${id}" for this key`);
    }
    return new ObjectKeys(blobKey, dataKey, Buffer.from(header.subarray(OFF_NONCE_PREFIX, OFF_WRAP_NONCE)));
  }

  /** The master key id a header names (for the re-encryption tool), or undefined without the magic. */
  static keyIdOf(header: Buffer): string | undefined {
    if (header.length < HEADER_SIZE || !hasMagic(header)) return undefined;
    return header.subarray(OFF_KEY_ID, OFF_KEY_ID + header[OFF_KEY_ID_LEN]!).toString('utf8');
  }

  /** Chunk `index` sealed: ciphertext then tag. */
  seal(index: number, final: boolean, plain: Buffer): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.dataKey, this.nonce(index));
    cipher.setAAD(this.chunkAad(index, final));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }

  /** Chunk `index` opened, whole and verified, or BlobIntegrityError: none of a bad chunk's bytes come out. */
  open(index: number, final: boolean, sealed: Buffer): Buffer {
    if (sealed.length < TAG_SIZE) throw new BlobIntegrityError(this.blobKey, `chunk ${index} is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', this.dataKey, this.nonce(index));
    decipher.setAAD(this.chunkAad(index, final));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE)), decipher.final()]);
    } catch {
      throw new BlobIntegrityError(this.blobKey, `chunk ${index}${final ? ' (final)' : ''} fails its tag`);
    }
  }

  private nonce(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= MAX_CHUNKS) throw new Error(`chunk index ${index}`);
    const nonce = Buffer.alloc(NONCE_PREFIX + 4);
    this.noncePrefix.copy(nonce, 0);
    nonce.writeUInt32BE(index, NONCE_PREFIX);
    return nonce;
  }

  private chunkAad(index: number, final: boolean): Buffer {
    const head = Buffer.alloc(5);
    head.writeUInt32BE(index, 0);
    head[4] = final ? 1 : 0;
    return Buffer.concat([head, Buffer.from(this.blobKey, 'utf8')]);
  }
}

function wrapAad(header: Buffer, blobKey: string): Buffer {
  return Buffer.concat([header.subarray(0, OFF_WRAPPED), Buffer.from(blobKey, 'utf8')]);
}
