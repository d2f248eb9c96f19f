import {
  FieldError,
  type ColumnKind,
  type ColumnStep,
  type PreprocessingSpec,
  type TableProfile,
  type TargetSpec,
} from '@tq/contracts';
import { mulberry32 } from '@tq/ml';
import { categoryKey, isMissing, toBoolean, toDays, toNumber, type Cell } from './cells';
import { at } from './limits';
import { Moments } from './moments';
import { stepWidth } from './step-encoders';
import type { TableSource } from './table-source';
import { TRAIN } from './split';
import { MAX_CATEGORIES } from './infer-kind';

export interface FitOptions {
  /** The table's profile, with its label (decides each column's kind and the task). */
  profile: TableProfile;
  /** How missing numbers and dates are filled: the training mean (default) or median. */
  impute?: 'mean' | 'median' | undefined;
  /** Per data row: TRAIN rows are fitted on, all others ignored (from splitRows). All rows when absent. */
  roles?: Uint8Array;
}

/** Values kept per column for the median: exact up to this many training rows, a uniform sample above. */
const MEDIAN_SAMPLE = 20_000;

/**
 * Fits the preprocessing on the training rows only (no statistic sees a validation row) in one
 * streaming pass: means, standard deviations and medians, boolean fills, training categories.
 */
export async function fitPreprocessing(table: TableSource, opts: FitOptions): Promise<PreprocessingSpec> {
  const label = opts.profile.label;
  if (!label) throw new FieldError('label', 'a label column is needed to fit preprocessing');
  const used = opts.profile.columns.filter((c) => c.dropped === undefined && c.name !== label.column);
  const fitters = used.flatMap((c) =>
    isFitted(c.kind)
      ? [
          {
            name: c.name,
            index: table.columns.indexOf(c.name),
            fitter: newFitter(c.kind, c.name),
          },
        ]
      : [],
  );
  const missing = fitters.find((f) => f.index < 0);
  if (missing) throw new FieldError('columns', `missing required column "${missing.name}"`);
  const labelIndex = table.columns.indexOf(label.column);
  const target = new Moments();
  let row = 0;
  for await (const batch of table.batches) {
    for (const cells of batch) {
      row++;
      if ((opts.roles && opts.roles[row - 1] !== TRAIN) || isMissing(cells[labelIndex])) continue;
      for (const f of fitters) f.fitter.add(cells[f.index]!, row);
      if (label.task === 'regression') target.add(toNumber(cells[labelIndex]!));
    }
  }
  const steps: ColumnStep[] = [];
  const ignored = opts.profile.columns
    .filter((c) => c.dropped !== undefined)
    .map((c) => ({ name: c.name, reason: c.dropped! }));
  for (const f of fitters) {
    const step = f.fitter.finish(opts.impute ?? 'mean');
    if (typeof step === 'string') ignored.push({ name: f.name, reason: step });
    else steps.push(step);
  }
  if (steps.length === 0)
    throw new FieldError('columns', 'no usable input column (all dropped, ignored or empty in training rows)');
  return {
    version: 1,
    steps,
    ignored,
    target: targetSpec(label, target),
    width: steps.reduce((w, s) => w + stepWidth(s), 0),
  };
}

function targetSpec(label: NonNullable<TableProfile['label']>, y: Moments): TargetSpec {
  if (label.task === 'classification') {
    return { column: label.column, task: 'classification', classes: label.classes.map((c) => c.value).sort() };
  }
  if (y.n === 0) throw new FieldError('label', `"${label.column}" has no values in the training rows`);
  return { column: label.column, task: 'regression', mean: y.mean, std: y.std > 0 ? y.std : 1 };
}

type FittedKind = 'numeric' | 'datetime' | 'boolean' | 'categorical';
/** Text and constant columns are always dropped by the profile; the guard keeps the types honest. */
const isFitted = (kind: ColumnKind): kind is FittedKind => kind !== 'text' && kind !== 'constant';
interface Fitter {
  add(cell: Cell, row: number): void;
  finish(impute: 'mean' | 'median'): ColumnStep | string;
}

function newFitter(kind: FittedKind, name: string): Fitter {
  if (kind === 'numeric') return scaledFitter(name, 'numeric', toNumber, 'a number');
  if (kind === 'datetime') return scaledFitter(name, 'datetime', toDays, 'an ISO date');
  if (kind === 'boolean') return booleanFitter(name);
  return categoricalFitter(name);
}

function scaledFitter(
  name: string,
  kind: 'numeric' | 'datetime',
  parse: (c: Cell) => number,
  expected: string,
): Fitter {
  const m = new Moments();
  const sample: number[] = [];
  const rand = mulberry32(0x5eed);
  return {
    add(cell, row) {
      if (isMissing(cell)) return;
      const x = parse(cell);
      if (Number.isNaN(x))
        throw new FieldError(at(row, name), `${JSON.stringify(cell)} is not ${expected} (the column is ${kind})`);
      m.add(x);
      // Reservoir sampling (Algorithm R): a uniform sample of the column for its median.
      if (sample.length < MEDIAN_SAMPLE) sample.push(x);
      else {
        const j = Math.floor(rand() * m.n);
        if (j < MEDIAN_SAMPLE) sample[j] = x;
      }
    },
    finish(impute) {
      if (m.n === 0) return 'all values missing in the training rows';
      const fill = impute === 'median' ? median(sample) : m.mean;
      // A constant column in training carries no information but must not divide by zero.
      return { name, kind, fill, mean: m.mean, std: m.std > 0 ? m.std : 1 };
    },
  };
}

function booleanFitter(name: string): Fitter {
  const tokens = { true: new Set<string>(), false: new Set<string>() };
  let trues = 0;
  let falses = 0;
  return {
    add(cell, row) {
      if (isMissing(cell)) return;
      const b = toBoolean(cell);
      if (b === undefined)
        throw new FieldError(at(row, name), `${JSON.stringify(cell)} is not a boolean (the column is boolean)`);
      if (b) trues++;
      else falses++;
      // The exact spellings seen: the ONNX graph maps these strings (it cannot lower-case).
      const spelling = categoryKey(cell);
      if (tokens[String(b) as 'true' | 'false'].size < 16) tokens[String(b) as 'true' | 'false'].add(spelling);
    },
    finish() {
      if (trues + falses === 0) return 'all values missing in the training rows';
      const fill = trues >= falses ? 1 : 0;
      return {
        name,
        kind: 'boolean',
        trueTokens: [...tokens.true].sort(),
        falseTokens: [...tokens.false].sort(),
        fill,
      };
    },
  };
}

function categoricalFitter(name: string): Fitter {
  const counts = new Map<string, number>();
  return {
    add(cell) {
      if (isMissing(cell)) return;
      const key = categoryKey(cell);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      // Bound memory on a column forced categorical that has many values: keep the frequent ones.
      if (counts.size > 4 * MAX_CATEGORIES) prune(counts);
    },
    finish() {
      if (counts.size === 0) return 'all values missing in the training rows';
      const frequent = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, MAX_CATEGORIES);
      const categories = frequent.map(([c]) => c).sort();
      return { name, kind: 'categorical', categories };
    },
  };
}

function prune(counts: Map<string, number>): void {
  const keep = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 2 * MAX_CATEGORIES);
  counts.clear();
  for (const [k, v] of keep) counts.set(k, v);
}

function median(values: number[]): number {
  const s = Float64Array.from(values).sort();
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
