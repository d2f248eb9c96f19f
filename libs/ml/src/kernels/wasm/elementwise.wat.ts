import { forLoop, type WasmFunction } from './assembler';
import { lanes } from './lanes.wat';

/**
 * Memory-bound kernels of the bias and activation paths, 4 floats at a time (scalar tail):
 *  - colSum(x, out, rows, C): out[c] = Σ_r x[r, c] — the bias gradient (tfjs' Sum over all axes
 *    but the last, which the wasm backend does by transposing first: 2.5 ms for [128,26,26,16]);
 *  - rowAdd(x, bias, out, rows, C): out[r, c] = x[r, c] + bias[c] — the bias add (wasm's broadcasting
 *    Add walks indices one element at a time: 1.8 ms for the same shape);
 *  - reluGrad(dy, x, out, n): out = x > 0 ? dy : 0 — replaces tfjs' Relu gradient (Cast, Step and
 *    Multiply: three full-size passes and temporaries).
 */

/** `for (j = 0; j < cBytes; j += 16 or 4)`: a vector body while 4 floats remain, then a scalar one. */

const at = (ptr: string) => `local.get $${ptr}  local.get $j  i32.add`;

export const COL_SUM: WasmFunction = {
  name: 'colSum',
  params: { x: 'i32', out: 'i32', rows: 'i32', C: 'i32' },
  locals: { r: 'i32', j: 'i32', cBytes: 'i32' },
  body: `
  local.get $C  i32.const 2  i32.shl  local.set $cBytes
  ${lanes(`${at('out')}  f32.const 0  f32x4.splat  v128.store`, `${at('out')}  f32.const 0  f32.store`)}
  ${forLoop(
    'r',
    'i32.const 0',
    'local.get $rows',
    `
    ${lanes(
      `${at('out')}  ${at('out')}  v128.load  ${at('x')}  v128.load  f32x4.add  v128.store`,
      `${at('out')}  ${at('out')}  f32.load  ${at('x')}  f32.load  f32.add  f32.store`,
    )}
    local.get $x  local.get $cBytes  i32.add  local.set $x`,
  )}`,
};

export const ROW_ADD: WasmFunction = {
  name: 'rowAdd',
  params: { x: 'i32', bias: 'i32', out: 'i32', rows: 'i32', C: 'i32' },
  locals: { r: 'i32', j: 'i32', cBytes: 'i32' },
  body: `
  local.get $C  i32.const 2  i32.shl  local.set $cBytes
  ${forLoop(
    'r',
    'i32.const 0',
    'local.get $rows',
    `
    ${lanes(
      `${at('out')}  ${at('x')}  v128.load  ${at('bias')}  v128.load  f32x4.add  v128.store`,
      `${at('out')}  ${at('x')}  f32.load  ${at('bias')}  f32.load  f32.add  f32.store`,
    )}
    local.get $x  local.get $cBytes  i32.add  local.set $x
    local.get $out  local.get $cBytes  i32.add  local.set $out`,
  )}`,
};

export const RELU_GRAD: WasmFunction = {
  name: 'reluGrad',
  params: { dy: 'i32', x: 'i32', out: 'i32', n: 'i32' },
  locals: { j: 'i32', cBytes: 'i32' },
  body: `
  local.get $n  i32.const 2  i32.shl  local.set $cBytes
  ${lanes(
    `${at('out')}  ${at('dy')}  v128.load  ${at('x')}  v128.load  f32.const 0  f32x4.splat  f32x4.gt  v128.and  v128.store`,
    `${at('out')}  ${at('dy')}  f32.load  f32.const 0  ${at('x')}  f32.load  f32.const 0  f32.gt  select  f32.store`,
  )}`,
};
