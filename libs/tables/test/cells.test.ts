import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toBoolean, toDays, toNumber } from '@tq/tables';

describe('cells', () => {
  it('reads decimal numbers only', () => {
    assert.deepEqual(['1', '-2.5', '1e3', '2E-2', ' 4 ', '.5', '+3'].map(toNumber), [1, -2.5, 1000, 0.02, 4, 0.5, 3]);
    const exact = [
      '0.1',
      '3456.7',
      '-0.000123456789012',
      '123456789012345',
      '1234567890123456789',
      '9007199254740993',
      '4.35e-5',
      '007',
      '5.',
    ];
    for (const s of exact) assert.equal(toNumber(s), Number(s), s);
    for (const s of ['0x1f', '.', '-', '1.2.3', 'e5', '--1', 'Infinity', '', '  ', '1-2', '2024-01-13', '3 kg', '1,5'])
      assert.ok(Number.isNaN(toNumber(s)), s);
    assert.ok(Number.isNaN(toNumber(true)));
  });

  it('reads ISO dates as days since 1970-01-01 UTC, whatever the host zone', () => {
    for (const s of ['1970-01-01', '2012-01-01', '2000-02-29', '1969-12-31', '1600-03-01', '2024-12-31'])
      assert.equal(toDays(s), Date.parse(s) / 86_400_000, s);
    assert.equal(toDays('2012-01-01T12:00'), 15340.5);
    assert.equal(toDays('2012-01-01 06:00:00Z'), 15340.25);
    assert.equal(toDays('2012-01-01T00:00:00+02:00'), 15340 - 1 / 12);
    for (const s of ['2012-13-01', '2012/01/01', '12-01-2012', 'tomorrow']) assert.ok(Number.isNaN(toDays(s)), s);
  });

  it('reads booleans in the usual spellings', () => {
    assert.deepEqual(['true', 'No', 'YES', ' f ', true, 'y'].map(toBoolean), [true, false, true, false, true, true]);
    assert.deepEqual(['1', 'maybe', 'nope', null].map(toBoolean), [undefined, undefined, undefined, undefined]);
  });
});
