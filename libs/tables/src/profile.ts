import {
  FieldError,
  type ColumnOverrides,
  type ColumnProfile,
  type LabelProfile,
  type TableProfile,
  type Task,
} from '@tq/contracts';
import { ColumnStats } from './column-stats';
import { malformedReason } from './malformed-rows';
import { inferKind } from './infer-kind';
import type { TableSource } from './table-source';
import { inferTask } from './task';

export interface ProfileOptions {
  /** The label column: profiled like the others, plus its class balance or numeric range. */
  label?: string;
  /** Classification or regression; inferred from the label column when absent. */
  task?: Task;
  /** Kinds forced by the user, or "ignore". */
  overrides?: ColumnOverrides;
}

/** How many top values a profile lists per column. */
const TOP = 10;

/** Profiles a table in one streaming pass; memory is bounded per column (see ColumnStats). */
export async function profileTable(table: TableSource, opts: ProfileOptions = {}): Promise<TableProfile> {
  checkNames(table.columns, opts);
  const stats = table.columns.map(() => new ColumnStats());
  const width = stats.length;
  let rows = 0;
  let malformed: TableProfile['malformedRows'];
  for await (const batch of table.batches) {
    for (const cells of batch) {
      rows++;
      const reason = malformedReason(cells, width);
      if (reason === undefined) for (let k = 0; k < width; k++) stats[k]!.add(cells[k]!);
      else if (malformed) malformed.count++;
      else malformed = { count: 1, first: { row: rows, message: reason } };
    }
  }
  const columns = table.columns.map((name, k) => columnProfile(name, stats[k]!, opts.overrides));
  const profile: TableProfile = { rows, columns, ...(malformed ? { malformedRows: malformed } : {}) };
  if (opts.label === undefined) return profile;
  const k = table.columns.indexOf(opts.label);
  return { ...profile, label: labelProfile(opts.label, stats[k]!, columns[k]!, opts.task) };
}

function columnProfile(name: string, s: ColumnStats, overrides: ColumnOverrides | undefined): ColumnProfile {
  const decision = inferKind(name, s, overrides);
  const out: ColumnProfile = {
    name,
    kind: decision.kind,
    missing: s.missing,
    distinct: s.distinct.size(),
    distinctExact: s.distinct.exact,
  };
  const moments = decision.kind === 'numeric' ? s.numbers : decision.kind === 'datetime' ? s.days : undefined;
  if (moments && moments.n > 0)
    Object.assign(out, { min: moments.min, max: moments.max, mean: moments.mean, std: moments.std });
  // Numbers list their values only when there are few (a code, a count, a class index).
  const fewValues = s.distinct.exact && s.distinct.size() <= 2 * TOP;
  if (s.distinct.size() > 0 && (moments === undefined || fewValues)) out.top = s.distinct.top(TOP * 2);
  if (decision.dropped !== undefined) out.dropped = decision.dropped;
  if (decision.overridden) out.overridden = true;
  return out;
}

function labelProfile(column: string, s: ColumnStats, profile: ColumnProfile, task: Task | undefined): LabelProfile {
  const chosen = task ?? inferTask(profile);
  if (chosen === 'regression') {
    if (s.text > 0 || s.numbers.n === 0) {
      const example = s.distinct.top(1)[0]?.value ?? '';
      throw new FieldError('task', `regression needs a numeric label; "${column}" holds text (e.g. "${example}")`);
    }
    return {
      column,
      task: 'regression',
      min: s.numbers.min,
      max: s.numbers.max,
      mean: s.numbers.mean,
      std: s.numbers.std,
    };
  }
  if (!s.distinct.exact) {
    const why = `over ${s.distinct.counted} distinct values: too many classes (use task "regression" for a numeric target)`;
    throw new FieldError('label', `"${column}" has ${why}`);
  }
  const classes = s.distinct.top(Number.MAX_SAFE_INTEGER);
  if (classes.length < 2) {
    const found = classes.length === 0 ? 'no values' : `a single class (${classes[0]!.value})`;
    throw new FieldError('label', `"${column}" has ${found}; classification needs two or more`);
  }
  return { column, task: 'classification', classes };
}

function checkNames(columns: readonly string[], opts: ProfileOptions): void {
  if (opts.label !== undefined && !columns.includes(opts.label)) {
    throw new FieldError('label', `no column "${opts.label}" in the table (columns: ${columns.join(', ')})`);
  }
  for (const name of Object.keys(opts.overrides ?? {})) {
    if (!columns.includes(name)) throw new FieldError(`columns.${name}`, 'no such column in the table');
  }
  // Ignoring the label would still train on it, with the profile saying it was dropped.
  if (opts.label !== undefined && opts.overrides?.[opts.label] === 'ignore')
    throw new FieldError(`columns.${opts.label}`, 'is the label column, so it cannot be ignored');
}
