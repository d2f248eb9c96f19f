const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

export interface SniffedJson {
  /** The first byte that is not JSON whitespace, after an optional UTF-8 BOM; undefined when none. */
  first: number | undefined;
  /** The source's bytes from that byte on (the BOM and leading whitespace dropped). */
  bytes: AsyncGenerator<Buffer>;
  /** How many bytes were dropped before `bytes` (the BOM and leading whitespace): where they start in the source. */
  skipped: number;
}

/**
 * Reads a JSON file's source up to its first meaningful byte (`[` for a JSON array, `{` for JSON
 * Lines). Leading whitespace is dropped as it comes, so a file of blanks holds no memory. Closing
 * `bytes` (a `break` or an error in its reader) destroys the source through its iterator.
 */
export async function sniffJson(source: AsyncIterable<Buffer>): Promise<SniffedJson> {
  const chunks = source[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let bomDecided = false;
  let skipped = 0;
  try {
    for (let r = await chunks.next(); !r.done; r = await chunks.next()) {
      head = head.length ? Buffer.concat([head, r.value]) : r.value;
      if (!bomDecided) {
        // A BOM cut across chunks: wait for its three bytes (or the end) before deciding.
        if (head.length < BOM.length && BOM.subarray(0, head.length).equals(head)) continue;
        bomDecided = true;
        if (head.subarray(0, BOM.length).equals(BOM)) {
          head = head.subarray(BOM.length);
          skipped += BOM.length;
        }
      }
      const start = firstNonBlank(head);
      if (start >= 0)
        return { first: head[start], bytes: prepend(head.subarray(start), chunks), skipped: skipped + start };
      skipped += head.length;
      head = Buffer.alloc(0);
    }
  } catch (err) {
    await chunks.return?.();
    throw err;
  }
  // Blank, empty, or the start of a BOM alone: the JSON Lines reader says what is wrong with it.
  return { first: undefined, bytes: prepend(head, chunks), skipped };
}

/** JSON whitespace: space, tab, LF, CR. */
function firstNonBlank(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 32 && b !== 9 && b !== 10 && b !== 13) return i;
  }
  return -1;
}

async function* prepend(head: Buffer, rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    if (head.length) yield head;
    for (let r = await rest.next(); !r.done; r = await rest.next()) yield r.value;
  } finally {
    await rest.return?.();
  }
}
