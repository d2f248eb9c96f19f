import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  checkedJsonBody,
  checkedPredictJson,
  FieldError,
  MAX_INSTANCE_ROWS,
  MAX_ROW_VALUES,
  numericRowsBody,
  predictRequestSchema,
} from '../src';

/** The same bodies every run; FUZZ_SEED=<n> explores others. */
const SEED = Number(process.env.FUZZ_SEED ?? 20261201);

/** A value that is a row's number, or almost one. */
const cell = fc.oneof(
  { weight: 6, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, -0, '1', null, true, [1], {}, Object.create(null)),
  },
);
const row = fc.oneof({ weight: 8, arbitrary: fc.array(cell, { maxLength: 6 }) }, { weight: 1, arbitrary: cell });
/**
 * Predict bodies and near misses: rows of odd values, empty rows, other and extra keys, non-objects.
 * Objects with Object.prototype, as JSON.parse makes them.
 */
const plain = { noNullPrototype: true };
const body = fc.oneof(
  { weight: 6, arbitrary: fc.record({ instances: fc.array(row, { maxLength: 4 }) }, plain) },
  {
    weight: 2,
    arbitrary: fc.record({ instances: fc.array(row, { maxLength: 3 }), extra: fc.constantFrom(1, 'x', null) }, plain),
  },
  {
    weight: 1,
    arbitrary: fc.record({ records: fc.array(fc.dictionary(fc.string(), cell, plain), { maxLength: 3 }) }, plain),
  },
  { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.constant([]), fc.array(row), fc.string(), fc.double()) },
);

/** The error `fn` throws: a FieldError's fields and reasons. */
function refusal(fn: () => unknown): readonly { field: string; reason: string }[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof FieldError, String(err));
    return err.issues;
  }
  assert.fail('accepted');
}

describe('predict JSON bodies (checkedPredictJson: numeric rows taken as parsed, the rest by the contract)', () => {
  it('(property) the shortcut accepts only what the contract accepts, unchanged, and every valid instances body', () => {
    let taken = 0;
    fc.assert(
      fc.property(body, (value) => {
        const contract = predictRequestSchema.safeParse(value);
        if (numericRowsBody(value)) {
          taken++;
          assert.ok(contract.success, JSON.stringify(value));
          assert.deepEqual(contract.data, value);
        } else if (contract.success && 'instances' in contract.data) {
          assert.fail(`a valid instances body missed the shortcut: ${JSON.stringify(value)}`);
        }
      }),
      { seed: SEED, numRuns: 3_000 },
    );
    assert.ok(taken > 100, `only ${taken} bodies took the shortcut`);
  });

  it('(property) bytes give the same body, or the same 400 naming the field, as checkedJsonBody', () => {
    fc.assert(
      fc.property(body, (value) => {
        const bytes = Buffer.from(JSON.stringify(value) ?? 'null');
        let expected: unknown;
        try {
          expected = checkedJsonBody(predictRequestSchema, bytes);
        } catch {
          assert.deepEqual(
            refusal(() => checkedPredictJson(bytes)),
            refusal(() => checkedJsonBody(predictRequestSchema, bytes)),
          );
          return;
        }
        assert.deepEqual(checkedPredictJson(bytes), expected);
      }),
      { seed: SEED, numRuns: 3_000 },
    );
  });

  it('refuses rows past the bounds, a prototype key and bytes that are not JSON, naming the field', () => {
    const tooManyRows = Buffer.from(
      JSON.stringify({ instances: Array.from({ length: MAX_INSTANCE_ROWS + 1 }, () => [0]) }),
    );
    assert.equal(refusal(() => checkedPredictJson(tooManyRows))[0]?.field, 'instances');
    const longRow = Buffer.from(`{"instances":[[${'0,'.repeat(MAX_ROW_VALUES)}0]]}`);
    assert.equal(refusal(() => checkedPredictJson(longRow))[0]?.field, 'instances.0');
    const atBounds = `{"instances":[[${'0,'.repeat(MAX_ROW_VALUES - 1)}0]]}`;
    const accepted = checkedPredictJson(Buffer.from(atBounds));
    assert.equal('instances' in accepted && accepted.instances[0]?.length, MAX_ROW_VALUES);
    assert.deepEqual(
      refusal(() => checkedPredictJson(Buffer.from('{"instances":[[1]],"__proto__":{}}'))),
      [{ field: '__proto__', reason: 'the key "__proto__" is not allowed in a request body' }],
    );
    assert.equal(refusal(() => checkedPredictJson(Buffer.from('{"instances":[[1,')))[0]?.reason, 'not valid JSON');
    assert.equal(refusal(() => checkedPredictJson(Buffer.from('{"instances":[[1e999]]}')))[0]?.field, 'instances.0.0');
  });
});
