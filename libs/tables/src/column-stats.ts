import { categoryKey, isMissing, toBoolean, toDays, toNumber, type Cell } from './cells';
import { DistinctCounter } from './distinct';
import { Moments } from './moments';

/**
 * Everything profiling learns about one column in one pass, in bounded memory: how many cells are
 * missing, numbers, booleans or ISO dates, their moments, and the distinct values (see
 * DistinctCounter). The kind is decided afterwards from these counts (infer-kind.ts).
 */
export class ColumnStats {
  missing = 0;
  /** Present cells that are not numbers. */
  text = 0;
  booleans = 0;
  readonly numbers = new Moments();
  readonly days = new Moments();
  readonly distinct = new DistinctCounter();

  add(cell: Cell): void {
    if (isMissing(cell)) {
      this.missing++;
      return;
    }
    const x = toNumber(cell);
    if (!Number.isNaN(x)) {
      this.numbers.add(x);
      this.distinct.add(x);
      return;
    }
    // Only text reaches here: its distinct values are keyed by the trimmed text.
    this.text++;
    this.distinct.add(categoryKey(cell));
    if (toBoolean(cell) !== undefined) this.booleans++;
    else {
      const d = toDays(cell);
      if (!Number.isNaN(d)) this.days.add(d);
    }
  }

  /** Cells that are not missing. */
  get present(): number {
    return this.numbers.n + this.text;
  }
}
