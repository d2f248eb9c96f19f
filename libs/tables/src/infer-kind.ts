import type { ColumnKind, ColumnOverrides } from '@tq/contracts';
import type { ColumnStats } from './column-stats';

/** A text column with at most this many distinct values (and few per row) is categorical. */
export const MAX_CATEGORIES = 100;

export interface KindDecision {
  kind: ColumnKind;
  dropped?: string;
  overridden?: boolean;
}

/**
 * The kind of a column from its statistics, or the user's override. Columns that cannot help a
 * model are dropped with the reason: all missing, a single value, identifiers and free text.
 */
export function inferKind(name: string, stats: ColumnStats, overrides: ColumnOverrides = {}): KindDecision {
  const override = overrideOf(overrides, name);
  if (override === 'ignore') return { kind: naturalKind(stats).kind, dropped: 'ignored by request', overridden: true };
  if (override !== undefined) return { kind: override, overridden: true };
  return naturalKind(stats);
}

function naturalKind(stats: ColumnStats): KindDecision {
  const present = stats.numbers.n + stats.text;
  if (present === 0) return { kind: 'constant', dropped: 'all values are missing' };
  const distinct = stats.distinct.size();
  if (distinct === 1) return { kind: 'constant', dropped: `one value only (${stats.distinct.top(1)[0]!.value})` };
  if (stats.text === 0) return { kind: 'numeric' };
  if (stats.booleans === present) return { kind: 'boolean' };
  if (stats.days.n === present) return { kind: 'datetime' };
  if (stats.distinct.exact && distinct <= MAX_CATEGORIES && distinct <= Math.max(2, present / 2))
    return { kind: 'categorical' };
  const why =
    stats.numbers.n > 0
      ? `mixes numbers and text (${stats.text} text cells)`
      : `${distinct}${stats.distinct.exact ? '' : '+'} distinct values`;
  return { kind: 'text', dropped: `identifier or free text: ${why}` };
}

/** The user's override of a column: own keys only, so a column named "constructor" or "toString" has none. */
export function overrideOf(overrides: ColumnOverrides | undefined, name: string): ColumnOverrides[string] | undefined {
  return overrides && Object.hasOwn(overrides, name) ? overrides[name] : undefined;
}
