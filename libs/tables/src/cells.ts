/** One raw cell: CSV gives strings, JSONL gives JSON scalars. */
export type Cell = string | number | boolean | null;

/** Spellings of a missing cell (compared after trimming; JSON null is missing too). */
export const MISSING_TOKENS: ReadonlySet<string> = new Set(['', 'NA', 'N/A', 'null', 'NaN']);

export function isMissing(cell: Cell | undefined): boolean {
  if (cell === null || cell === undefined) return true;
  if (typeof cell === 'number') return Number.isNaN(cell);
  if (typeof cell === 'string') return MISSING_TOKENS.has(cell) || (hasEdgeSpace(cell) && MISSING_TOKENS.has(cell.trim()));
  return false;
}

function hasEdgeSpace(s: string): boolean {
  return s.length > 0 && (s.charCodeAt(0) <= 32 || s.charCodeAt(s.length - 1) <= 32);
}

/** A finite number, or NaN when the cell is not numeric (booleans and dates are not numbers). */
export function toNumber(cell: Cell): number {
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell : Number.NaN;
  if (typeof cell !== 'string') return Number.NaN;
  // Number('') and Number('  ') are 0, Number('0x1f') is 31: accept decimal notation only.
  if (!DECIMAL.test(cell)) return Number.NaN;
  return Number(cell);
}
const DECIMAL = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** Lower-cased spellings of booleans; 0/1 stay numeric. */
const TRUE_WORDS = new Set(['true', 'yes', 't', 'y']);
const FALSE_WORDS = new Set(['false', 'no', 'f', 'n']);

/** true / false for a boolean cell, undefined otherwise. */
export function toBoolean(cell: Cell): boolean | undefined {
  if (typeof cell === 'boolean') return cell;
  if (typeof cell !== 'string') return undefined;
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
  if (typeof cell !== 'string' || !ISO_DATE.test(cell)) return Number.NaN;
  const text = cell.trim();
  // A date-time without a zone is read as UTC so the result does not depend on the host's zone.
  const zoned = text.length <= 10 || /(Z|[+-]\d{2}:?\d{2})$/.test(text) ? text : `${text.replace(' ', 'T')}Z`;
  const ms = Date.parse(zoned.replace(' ', 'T'));
  return Number.isNaN(ms) ? Number.NaN : ms / MS_PER_DAY;
}

/** The text of a cell used as a category key (4 and "4" are the same category). */
export function categoryKey(cell: Cell): string {
  return typeof cell === 'string' ? cell.trim() : String(cell);
}
