import { FieldError, type PreprocessingSpec } from '@tq/contracts';
import type { Cell } from './cells';
import { at } from './limits';
import { stepEncoder, stepWidth, type StepEncoder } from './step-encoders';

/**
 * Turns raw rows of a table with the given header into feature rows of `spec.width` floats.
 * Counts, per column, the values that were categories unseen in training (encoded as "unknown").
 */
export class RowEncoder {
  /** Unseen categories per column name, over every row encoded so far. */
  readonly unknown: Record<string, number> = {};
  private readonly parts: Array<{ name: string; index: number; offset: number; encode: StepEncoder }>;

  constructor(
    readonly spec: PreprocessingSpec,
    columns: readonly string[],
  ) {
    const index = new Map(columns.map((c, i) => [c, i]));
    const missing = spec.steps.filter((s) => !index.has(s.name)).map((s) => s.name);
    if (missing.length) {
      const names = missing.map((m) => `"${m}"`).join(', ');
      throw new FieldError('columns', `missing required column${missing.length > 1 ? 's' : ''} ${names}`);
    }
    let offset = 0;
    this.parts = spec.steps.map((step) => {
      const part = { name: step.name, index: index.get(step.name)!, offset, encode: stepEncoder(step) };
      offset += stepWidth(step);
      return part;
    });
  }

  /** Writes row `row` (1-based, for error messages) at out[offset .. offset + width). */
  encode(cells: readonly Cell[], out: Float32Array, offset: number, row: number): void {
    for (const p of this.parts) {
      const unseen = p.encode(cells[p.index] ?? null, out, offset + p.offset, () => at(row, p.name));
      if (unseen) this.unknown[p.name] = (this.unknown[p.name] ?? 0) + 1;
    }
  }
}

export interface EncodedRecords {
  /** records.length × spec.width, row-major. */
  features: Float32Array;
  /** Unseen categories per column (mapped to the unknown slot, not an error). */
  unknown: Record<string, number>;
}

/**
 * Encodes records given by column name (a predict request). Every input column must be present
 * (its value may be null: imputed); a key that is neither an input, an ignored column nor the
 * target is an error, so a typo is not silently imputed.
 */
export function encodeRecords(
  spec: PreprocessingSpec,
  records: ReadonlyArray<Readonly<Record<string, unknown>>>,
): EncodedRecords {
  const names = spec.steps.map((s) => s.name);
  const known = new Set([...names, ...spec.ignored.map((i) => i.name), spec.target.column]);
  const encoder = new RowEncoder(spec, names);
  const features = new Float32Array(records.length * spec.width);
  records.forEach((record, i) => {
    for (const key of Object.keys(record)) {
      if (!known.has(key)) throw new FieldError(`records.${i}.${key}`, `unknown column (inputs: ${names.join(', ')})`);
    }
    const cells = names.map((name) => {
      if (!Object.hasOwn(record, name))
        throw new FieldError(`records.${i}.${name}`, `missing column "${name}" (send null for a missing value)`);
      const v = record[name];
      if (v !== null && typeof v === 'object')
        throw new FieldError(`records.${i}.${name}`, 'must be a number, string, boolean or null');
      return (v ?? null) as Cell;
    });
    try {
      encoder.encode(cells, features, i * spec.width, i + 1);
    } catch (err) {
      // Re-point the table's "row n, column c" at the request's records.i.c.
      if (err instanceof FieldError) {
        throw new FieldError(`records.${i}.${err.field.replace(/^row \d+, column "(.*)"$/, '$1')}`, err.reason);
      }
      throw err;
    }
  });
  return { features, unknown: encoder.unknown };
}
