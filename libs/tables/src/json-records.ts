import { FieldError } from '@tq/contracts';
import type { Cell } from './cells';
import { at } from './limits';

/**
 * One JSON record (a JSONL line or an element of a JSON array) as the row's cells, by the columns
 * the first record named: a missing key is a missing cell, a key the first record lacked or a
 * nested value is an error naming the row and column.
 */
export function toCells(record: Record<string, unknown>, row: number, index: ReadonlyMap<string, number>): Cell[] {
  const cells: Cell[] = new Array<Cell>(index.size).fill(null);
  for (const key in record) {
    const k = index.get(key);
    if (k === undefined) throw new FieldError(at(row, key), 'unknown column (not in the first record)');
    const v = record[key];
    if (v !== null && typeof v === 'object')
      throw new FieldError(at(row, key), 'must be a number, string, boolean or null');
    cells[k] = v as Cell;
  }
  return cells;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
