import { Readable } from 'node:stream';
import { CSV_DELIMITERS, type CsvDelimiter } from '@tq/contracts';

const QUOTE = 0x22;
const LF = 0x0a;
const CODES = CSV_DELIMITERS.map((d) => d.charCodeAt(0));

/**
 * The field separator of a CSV, from its header line (`head`: the file's first bytes, the line
 * ending where a line break outside quotes is): the candidate (CSV_DELIMITERS) it holds most often
 * outside quotes; a tie goes to the earlier one, none to the comma. The header alone decides, so
 * every reader of a file (the profile, training, each infer shard, which reads the header before
 * its range) reads it alike. Bytes, not text: UTF-8 never puts an ASCII byte inside a character.
 */
export function delimiterOf(head: Uint8Array): CsvDelimiter {
  const counts = CODES.map(() => 0);
  let quoted = false;
  for (const byte of head) {
    if (byte === QUOTE)
      quoted = !quoted; // "" inside quotes toggles twice
    else if (!quoted && byte === LF) break;
    else if (!quoted) {
      const k = CODES.indexOf(byte);
      if (k >= 0) counts[k]! += 1;
    }
  }
  const best = counts.reduce((b, n, k) => (n > counts[b]! ? k : b), 0);
  return CSV_DELIMITERS[best]!;
}

/** Whether `bytes` hold a line break outside quotes, given the quote state before them; and the state after. */
function lineEnd(bytes: Uint8Array, quoted: boolean): { found: boolean; quoted: boolean } {
  for (const byte of bytes) {
    if (byte === QUOTE) quoted = !quoted;
    else if (!quoted && byte === LF) return { found: true, quoted };
  }
  return { found: false, quoted };
}

/**
 * Reads `source` up to the end of its header line (or `maxBytes`, or its end), and gives those
 * bytes and a stream of the whole source again, those bytes first: what the parser reads once the
 * separator is known. Destroying the stream destroys `source`; an error of `source` is its error.
 */
export async function withHeadLine(source: Readable, maxBytes: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  const it = source[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  let size = 0;
  let quoted = false;
  let ended = false;
  while (size <= maxBytes) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(chunk);
    size += chunk.length;
    const seen = lineEnd(chunk, quoted);
    quoted = seen.quoted;
    if (seen.found) break;
  }
  const head = Buffer.concat(chunks);
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      if (head.length > 0) yield head;
      if (ended) return;
      for (let r = await it.next(); !r.done; r = await it.next())
        yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    } finally {
      await it.return?.(); // the reader stopped early: the source is destroyed
    }
  }
  return { head, stream: Readable.from(whole(), { objectMode: false }) };
}
