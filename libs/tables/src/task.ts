import type { ColumnProfile, Task } from '@tq/contracts';

/** A numeric label with at most this many distinct integer values is read as classes. */
export const MAX_INTEGER_CLASSES = 10;

/**
 * Classification or regression from the label column's profile: text, booleans and categories are
 * classes; numbers are a regression target unless they are few distinct integers (0/1, digits).
 */
export function inferTask(label: ColumnProfile): Task {
  if (label.kind !== 'numeric') return 'classification';
  const values = label.top ?? [];
  const fewIntegers =
    label.distinctExact &&
    label.distinct <= MAX_INTEGER_CLASSES &&
    values.length === label.distinct &&
    values.every((t) => Number.isInteger(Number(t.value)));
  return fewIntegers ? 'classification' : 'regression';
}
