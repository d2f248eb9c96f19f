import { forLoop, type WasmFunction } from './assembler';
import { lanes } from './lanes.wat';

/**
 * maxPoolGrad(x, dy, dx, batch, inH, inW, C, outH, outW, fH, fW, sH, sW, padTop, padLeft): NHWC,
 * dx (zeroed by the caller) += dy at the first strictly-largest element of each window (row-major),
 * nothing for a window holding only -Infinity/NaN — tfjs' cpu semantics.
 * Four channels at a time: the window max by f32x4.pmax (which, like tfjs' `>`, never picks NaN and
 * keeps the earlier of equal values), then a second pass adds dy where x equals the max and no
 * earlier element did. Scalar loop for C mod 4.
 * Why in wasm: stock wasm MaxPoolGrad took 29.5 ms for [128,26,26,16] (2x2, stride 2), the JS
 * version 9 ms, this one ~1 ms (memory-bound). AvgPoolGrad below: stock 10.9 ms, JS 4.3 ms.
 */
const xOffset = `local.get $b  local.get $inH  i32.mul  local.get $r  i32.add  local.get $inW  i32.mul  local.get $c  i32.add  local.get $cBytes  i32.mul  local.get $j  i32.add`;

const overWindow = (body: string) =>
  forLoop(
    'r',
    'local.get $r0',
    'local.get $r1',
    forLoop(
      'c',
      'local.get $c0',
      'local.get $c1',
      `
        ${xOffset}  local.set $off
        ${body}`,
    ),
  );

const vectorGroup = `
      f32.const -Infinity  f32x4.splat  local.set $best
      ${overWindow('local.get $best  local.get $x  local.get $off  i32.add  v128.load  f32x4.pmax  local.set $best')}
      local.get $best  f32.const -Infinity  f32x4.splat  f32x4.gt  local.set $avail
      local.get $pdy  local.get $j  i32.add  v128.load  local.set $g
      ${overWindow(`local.get $x  local.get $off  i32.add  v128.load  local.get $best  f32x4.eq  local.get $avail  v128.and  local.set $eq
        local.get $dx  local.get $off  i32.add  local.tee $at
        local.get $at  v128.load  local.get $g  local.get $eq  v128.and  f32x4.add  v128.store
        local.get $avail  local.get $eq  v128.andnot  local.set $avail`)}`;

const scalarChannel = `
      f32.const -Infinity  local.set $sbest
      i32.const -1  local.set $pos
      ${overWindow(`local.get $x  local.get $off  i32.add  f32.load  local.tee $sv  local.get $sbest  f32.gt
        if  local.get $sv  local.set $sbest  local.get $off  local.set $pos  end`)}
      local.get $pos  i32.const 0  i32.ge_s
      if
        local.get $dx  local.get $pos  i32.add  local.tee $at
        local.get $at  f32.load  local.get $pdy  local.get $j  i32.add  f32.load  f32.add  f32.store
      end`;

const avgVectorGroup = `
      local.get $pdy  local.get $j  i32.add  v128.load  local.get $scale  f32x4.splat  f32x4.mul  local.set $g
      ${overWindow(`local.get $dx  local.get $off  i32.add  local.tee $at  local.get $at  v128.load  local.get $g  f32x4.add  v128.store`)}`;

const avgScalarChannel = `
      local.get $pdy  local.get $j  i32.add  f32.load  local.get $scale  f32.mul  local.set $sv
      ${overWindow(`local.get $dx  local.get $off  i32.add  local.tee $at  local.get $at  f32.load  local.get $sv  f32.add  f32.store`)}`;

/** Loops over every output pixel (window clipped to the image) and its channels, 4 at a time then 1. */
function poolGradBody(vector: string, scalar: string): string {
  return `
  local.get $C  i32.const 2  i32.shl  local.set $cBytes
  local.get $dy  local.set $pdy
  ${forLoop(
    'b',
    'i32.const 0',
    'local.get $batch',
    forLoop(
      'oh',
      'i32.const 0',
      'local.get $outH',
      `
    ;; rows [max(t, 0), min(t + fH, inH)) with t = oh·sH − padTop
    local.get $oh  local.get $sH  i32.mul  local.get $padTop  i32.sub  local.tee $t
    i32.const 0  local.get $t  i32.const 0  i32.gt_s  select  local.set $r0
    local.get $t  local.get $fH  i32.add  local.tee $t  local.get $inH  local.get $t  local.get $inH  i32.lt_s  select  local.set $r1
    ${forLoop(
      'ow',
      'i32.const 0',
      'local.get $outW',
      `
      local.get $ow  local.get $sW  i32.mul  local.get $padLeft  i32.sub  local.tee $t
      i32.const 0  local.get $t  i32.const 0  i32.gt_s  select  local.set $c0
      local.get $t  local.get $fW  i32.add  local.tee $t  local.get $inW  local.get $t  local.get $inW  i32.lt_s  select  local.set $c1
      ;; 1 / (in-bounds elements of the window), for the average
      f32.const 1  local.get $r1  local.get $r0  i32.sub  local.get $c1  local.get $c0  i32.sub  i32.mul  f32.convert_i32_s  f32.div  local.set $scale
      ${lanes(vector, scalar)}
      local.get $pdy  local.get $cBytes  i32.add  local.set $pdy`,
    )}`,
    ),
  )}`;
}

const POOL_PARAMS = {
  x: 'i32',
  dy: 'i32',
  dx: 'i32',
  batch: 'i32',
  inH: 'i32',
  inW: 'i32',
  C: 'i32',
  outH: 'i32',
  outW: 'i32',
  fH: 'i32',
  fW: 'i32',
  sH: 'i32',
  sW: 'i32',
  padTop: 'i32',
  padLeft: 'i32',
} as const;
const POOL_LOCALS = {
  b: 'i32',
  oh: 'i32',
  ow: 'i32',
  r: 'i32',
  c: 'i32',
  r0: 'i32',
  r1: 'i32',
  c0: 'i32',
  c1: 'i32',
  j: 'i32',
  cBytes: 'i32',
  off: 'i32',
  at: 'i32',
  pos: 'i32',
  pdy: 'i32',
  t: 'i32',
  sbest: 'f32',
  sv: 'f32',
  scale: 'f32',
  best: 'v128',
  avail: 'v128',
  eq: 'v128',
  g: 'v128',
} as const;

export const MAX_POOL_GRAD: WasmFunction = {
  name: 'maxPoolGrad',
  params: { ...POOL_PARAMS },
  locals: { ...POOL_LOCALS },
  body: poolGradBody(vectorGroup, scalarChannel),
};

/**
 * avgPoolGrad(x, dy, dx, …same geometry): dx (zeroed by the caller) += dy / (in-bounds elements of
 * the window) over each window — the gradient of tfjs' forward avgPool (see ../pool-grad.kernel.ts).
 * x is unused (kept so both functions take the same arguments).
 */
export const AVG_POOL_GRAD: WasmFunction = {
  name: 'avgPoolGrad',
  params: { ...POOL_PARAMS },
  locals: { ...POOL_LOCALS },
  body: poolGradBody(avgVectorGroup, avgScalarChannel),
};
