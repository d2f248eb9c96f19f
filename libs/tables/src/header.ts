import { FieldError, TooLargeError } from '@tq/contracts';
import type { TableLimits } from './limits';

/** Checks a header's names: present, unique, within the column limit. */
export function checkHeader(names: readonly string[], limits: TableLimits): string[] {
  if (names.length > limits.maxColumns) {
    throw new TooLargeError('columns', `the table has ${names.length} columns, over the limit of ${limits.maxColumns}`);
  }
  const seen = new Set<string>();
  return names.map((raw, i) => {
    const name = raw.trim();
    if (name === '') throw new FieldError('header', `column ${i + 1} has no name`);
    if (seen.has(name)) throw new FieldError('header', `column "${name}" appears more than once`);
    seen.add(name);
    return name;
  });
}

export function checkRowCount(rows: number, limits: TableLimits): void {
  if (rows > limits.maxRows)
    throw new TooLargeError('rows', `the table has more than ${limits.maxRows} rows, the limit`);
}
