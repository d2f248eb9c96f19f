import { FieldError, type ColumnStep } from '@tq/contracts';
import { categoryKey, isMissing, toBoolean, toDays, toNumber, type Cell } from './cells';

/** Writes one column's features at out[o..]; returns true when a category was unseen in training. */
export type StepEncoder = (cell: Cell, out: Float32Array, o: number, place: () => string) => boolean;

/** Features one step writes: one, or one per category plus the unknown / missing slot. */
export function stepWidth(step: ColumnStep): number {
  return step.kind === 'categorical' ? step.categories.length + 1 : 1;
}

export function stepEncoder(step: ColumnStep): StepEncoder {
  switch (step.kind) {
    case 'numeric':
      return scaled(step, toNumber, 'a number');
    case 'datetime':
      return scaled(step, toDays, 'an ISO date (YYYY-MM-DD[Thh:mm[:ss]][Z])');
    case 'boolean':
      return boolean(step);
    case 'categorical':
      return categorical(step);
  }
}

function scaled(
  step: { fill: number; mean: number; std: number },
  parse: (c: Cell) => number,
  expected: string,
): StepEncoder {
  const { fill, mean, std } = step;
  return (cell, out, o, place) => {
    let x = fill;
    if (!isMissing(cell)) {
      x = parse(cell);
      if (Number.isNaN(x)) throw new FieldError(place(), `${JSON.stringify(cell)} is not ${expected}`);
    }
    out[o] = (x - mean) / std;
    return false;
  };
}

function boolean(step: Extract<ColumnStep, { kind: 'boolean' }>): StepEncoder {
  return (cell, out, o, place) => {
    if (isMissing(cell)) out[o] = step.fill;
    else {
      const b = toBoolean(cell);
      if (b === undefined)
        throw new FieldError(place(), `${JSON.stringify(cell)} is not a boolean (true/false, yes/no)`);
      out[o] = b ? 1 : 0;
    }
    return false;
  };
}

function categorical(step: Extract<ColumnStep, { kind: 'categorical' }>): StepEncoder {
  const index = new Map(step.categories.map((c, i) => [c, i]));
  const unknownSlot = step.categories.length;
  return (cell, out, o) => {
    out.fill(0, o, o + unknownSlot + 1);
    if (isMissing(cell)) {
      out[o + unknownSlot] = 1;
      return false;
    }
    const k = index.get(categoryKey(cell));
    out[o + (k ?? unknownSlot)] = 1;
    return k === undefined;
  };
}
