/** One raw cell: CSV gives strings, JSONL gives JSON scalars. */
export type Cell = string | number | boolean | null;

/** Spellings of a missing cell (compared after trimming; JSON null is missing too). */
export const MISSING_TOKENS: ReadonlySet<string> = new Set(['', 'NA', 'N/A', 'null', 'NaN']);

export function isMissing(cell: Cell | undefined): boolean {
  if (cell === null || cell === undefined) return true;
  if (typeof cell === 'number') return Number.isNaN(cell);
  if (typeof cell === 'string') {
    // Every token is at most 4 characters: compared directly, longer cells fall through (the hot path).
    switch (cell.length) {
      case 0:
        return true;
      case 2:
        if (cell === 'NA') return true;
        break;
      case 3:
        if (cell === 'N/A' || cell === 'NaN') return true;
        break;
      case 4:
        if (cell === 'null') return true;
        break;
    }
    return hasEdgeSpace(cell) && MISSING_TOKENS.has(cell.trim());
  }
  return false;
}

function hasEdgeSpace(s: string): boolean {
  return s.length > 0 && (s.charCodeAt(0) <= 32 || s.charCodeAt(s.length - 1) <= 32);
}

/** A finite number, or NaN when the cell is not numeric (booleans and dates are not numbers). */
export function toNumber(cell: Cell): number {
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : Number.NaN;
  if (typeof cell !== 'string') return Number.NaN;
  return parseDecimal(hasEdgeSpace(cell) ? cell.trim() : cell);
}

const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

/**
 * Decimal notation to a number, NaN otherwise, by hand: this is the profile's hottest function.
 * Up to 15 digits without exponent are computed here exactly (an integer below 2^53 divided by an
 * exact power of ten is correctly rounded, the fast path of strtod); exponents and longer mantissas
 * go to the engine's parser after a character check. Unary + alone is slow on text that is not a
 * number, and it would accept '', '0x1f' and 'Infinity'.
 */
function parseDecimal(s: string): number {
  const n = s.length;
  let i = 0;
  const sign = s.charCodeAt(0);
  if (sign === 45 || sign === 43) i = 1;
  let mantissa = 0;
  let digits = 0;
  let decimals = -1;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      mantissa = mantissa * 10 + (c - 48);
      digits++;
      if (decimals >= 0) decimals++;
    } else if (c === 46 && decimals < 0) decimals = 0;
    else break;
  }
  if (digits === 0) return Number.NaN;
  if (i < n || digits > 15) {
    if (!decimalChars(s)) return Number.NaN;
    const x = +s;
    return Number.isFinite(x) ? x : Number.NaN;
  }
  const v = decimals > 0 ? mantissa / POW10[decimals]! : mantissa;
  return sign === 45 ? -v : v;
}

/** Only digits, '.', 'e', 'E', and a sign first or after the exponent: decimal notation's characters. */
function decimalChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 48 && c <= 57) || c === 46 || c === 101 || c === 69) continue;
    if ((c === 45 || c === 43) && (i === 0 || (s.charCodeAt(i - 1) | 32) === 101)) continue;
    return false;
  }
  return true;
}

/** Lower-cased spellings of booleans; 0/1 stay numeric. */
const TRUE_WORDS = new Set(['true', 'yes', 't', 'y']);
const FALSE_WORDS = new Set(['false', 'no', 'f', 'n']);

/** t, f, y, n (lower-cased by | 32): a cheap test before lower-casing the cell. */
const BOOLEAN_INITIALS = new Set([116, 102, 121, 110]);

/** true / false for a boolean cell, undefined otherwise. */
export function toBoolean(cell: Cell): boolean | undefined {
  if (typeof cell === 'boolean') return cell;
  // The longest word is 5 letters; this keeps the lower-casing off long text (with some spaces).
  if (typeof cell !== 'string' || cell.length > 9 || !BOOLEAN_INITIALS.has(cell.trimStart().charCodeAt(0) | 32))
    return undefined;
  const word = cell.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

const MS_PER_DAY = 86_400_000;
/** ISO 8601 dates and date-times (2012-01-01, 2012-01-01T10:00, with seconds and zone). */
const ISO_DATE = /^\s*\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?\s*$/;

/** Days since 1970-01-01 UTC (fractional), or NaN when the cell is not an ISO date. */
export function toDays(cell: Cell): number {
  if (typeof cell !== 'string' || cell.length < 10) return Number.NaN;
  if (cell.length === 10 && isPlainDate(cell)) return plainDate(cell);
  if (!ISO_DATE.test(cell)) return Number.NaN;
  const text = cell.trim();
  // A date-time without a zone is read as UTC so the result does not depend on the host's zone.
  const zoned = text.length <= 10 || /(Z|[+-]\d{2}:?\d{2})$/.test(text) ? text : `${text.replace(' ', 'T')}Z`;
  const ms = Date.parse(zoned.replace(' ', 'T'));
  return Number.isNaN(ms) ? Number.NaN : ms / MS_PER_DAY;
}

function isPlainDate(s: string): boolean {
  for (let i = 0; i < 10; i++) {
    const c = s.charCodeAt(i);
    if (i === 4 || i === 7 ? c !== 45 : c < 48 || c > 57) return false;
  }
  return true;
}

/** YYYY-MM-DD (checked by isPlainDate) read by hand: Date.parse / Date.UTC cost more than the rest of a cell. */
function plainDate(s: string): number {
  const y = digits(s, 0, 4);
  const m = digits(s, 5, 7);
  const d = digits(s, 8, 10);
  if (m < 1 || m > 12 || d < 1 || d > 31) return Number.NaN;
  return daysFromCivil(y, m, d);
}

function digits(s: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + s.charCodeAt(i) - 48;
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The text of a cell used as a category key (4 and "4" are the same category). */
export function categoryKey(cell: Cell): string {
  return typeof cell === 'string' ? cell.trim() : String(cell);
}
