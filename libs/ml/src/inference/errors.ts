import { FieldError } from '@tq/contracts';
/** Rows whose width does not match the model: the caller's mistake, never worth a retry. */
export class FeatureCountError extends FieldError {
  constructor(
    readonly expectedFeatureCount: number,
    readonly rowCount: number,
    readonly valueCount: number,
    field = 'instances',
  ) {
    super(
      field,
      `the model takes ${expectedFeatureCount} features per row: ${rowCount} rows need ${rowCount * expectedFeatureCount} values, got ${valueCount}`,
    );
  }
}
