import { FieldError } from '@tq/contracts';
import type { Cell } from './cells';
import { at } from './limits';

/** The rows a lenient read could not read, with why (ReadOptions.keepMalformedRows). */
const reasons = new WeakMap<readonly Cell[], string>();

/** Marks `cells` as the place of a row that could not be read, for `reason`; returns it. */
export function markMalformed(cells: Cell[], reason: string): Cell[] {
  reasons.set(cells, reason);
  return cells;
}

/**
 * Why a row of a table read with keepMalformedRows could not be read (a JSON line that does not
 * parse, a CSV record with another number of cells than the header), or undefined for a good row.
 */
export function malformedReason(cells: readonly Cell[], columns: number): string | undefined {
  const marked = reasons.get(cells);
  if (marked !== undefined) return marked;
  const n = cells.length;
  return n === columns ? undefined : `has ${n} cell${n === 1 ? '' : 's'}, the header has ${columns}`;
}

/** A strict read's error for a malformed row, naming it. */
export function malformedRowError(row: number, reason: string): FieldError {
  return new FieldError(at(row), reason);
}
