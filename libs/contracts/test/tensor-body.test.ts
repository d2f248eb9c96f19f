import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FieldError, isTensorContentType, tensorBytesOf, tensorRowsOf } from '../src';

describe('binary predict rows (tensor-body)', () => {
  it('reads float32 little-endian values back as sent, from any byte offset', () => {
    const values = Float32Array.from([0.1, -2.5, 3e-8, 65504, -0]);
    const bytes = tensorBytesOf(values);
    // A Buffer slice at an odd offset, as Node's pooled buffers give them.
    const unaligned = Buffer.concat([Buffer.from([7]), bytes]).subarray(1);
    assert.equal(unaligned.byteOffset % 4 === 0, false);
    assert.deepEqual(tensorRowsOf(unaligned).tensor, values);
    // Little-endian on the wire whatever the host: 1.0f is 00 00 80 3f.
    assert.deepEqual([...tensorBytesOf(Float32Array.of(1))], [0, 0, 0x80, 0x3f]);
  });

  it('refuses an empty body, partial values and non-finite values, naming the body', () => {
    const refusal = (bytes: Uint8Array) => {
      try {
        tensorRowsOf(bytes);
      } catch (err) {
        assert.ok(err instanceof FieldError);
        assert.equal(err.issues[0]?.field, '(body)');
        return err.issues[0]?.reason ?? '';
      }
      assert.fail('accepted');
    };
    assert.match(refusal(new Uint8Array(0)), /empty/);
    assert.match(refusal(new Uint8Array(10)), /10 bytes are not whole float32 values/);
    assert.match(refusal(tensorBytesOf(Float32Array.of(1, Infinity))), /value 1 is Infinity/);
    assert.match(refusal(tensorBytesOf(Float32Array.of(NaN))), /value 0 is NaN/);
  });

  it('knows its content type with parameters and in any case, and nothing else', () => {
    assert.ok(isTensorContentType('application/octet-stream'));
    assert.ok(isTensorContentType('Application/Octet-Stream; charset=binary'));
    for (const other of [undefined, '', 'application/json', 'application/octet-streamx', 'text/plain'])
      assert.equal(isTensorContentType(other), false, String(other));
  });
});
