import { forLoop, type WasmFunction } from './assembler';
import { lanes } from './lanes.wat';

/**
 * im2col and col2im for NHWC convolutions (see ../im2col.ts for the layout: row n = output pixel
 * (b, oh, ow), column p = (kh·kW + kw)·C + ci). Every patch entry is a contiguous run of C channels,
 * copied (im2col; zeros where the window is in the padding) or added back (col2im) four floats at a
 * time, with a scalar tail for C mod 4.
 * Why in wasm: these are the memory-bound halves of both conv gradients (2.2M floats each for the
 * bench CNN's second layer); JS moves one float per iteration.
 */
const PARAMS = {
  x: 'i32',
  col: 'i32',
  batch: 'i32',
  inH: 'i32',
  inW: 'i32',
  C: 'i32',
  outH: 'i32',
  outW: 'i32',
  kH: 'i32',
  kW: 'i32',
  sH: 'i32',
  sW: 'i32',
  dH: 'i32',
  dW: 'i32',
  padTop: 'i32',
  padLeft: 'i32',
} as const;
const LOCALS = {
  b: 'i32',
  oh: 'i32',
  ow: 'i32',
  kh: 'i32',
  kw: 'i32',
  ih: 'i32',
  iw: 'i32',
  src: 'i32',
  dst: 'i32',
  j: 'i32',
  cBytes: 'i32',
} as const;

/** Moves one run of C floats between src (the image) and dst (the column matrix). */
function run(mode: 'copy' | 'add'): string {
  const [vec, scalar] =
    mode === 'copy'
      ? [
          'local.get $dst  local.get $j  i32.add  local.get $src  local.get $j  i32.add  v128.load  v128.store',
          'local.get $dst  local.get $j  i32.add  local.get $src  local.get $j  i32.add  f32.load  f32.store',
        ]
      : [
          'local.get $src  local.get $j  i32.add  local.get $src  local.get $j  i32.add  v128.load  local.get $dst  local.get $j  i32.add  v128.load  f32x4.add  v128.store',
          'local.get $src  local.get $j  i32.add  local.get $src  local.get $j  i32.add  f32.load  local.get $dst  local.get $j  i32.add  f32.load  f32.add  f32.store',
        ];
  // C = 1 (a first conv layer on grey images) is one float per tap: skip the run loops.
  return `
          local.get $cBytes  i32.const 4  i32.eq
          if
            i32.const 0  local.set $j
            ${scalar}
          else
          ${lanes(vec, scalar)}
          end`;
}

/** Zeroes one run of C floats at dst (im2col's padding). */
const zeros = `
          i32.const 0  local.set $j
          block $zdone  loop $znext
            local.get $j  local.get $cBytes  i32.ge_u  br_if $zdone
            local.get $dst  local.get $j  i32.add  f32.const 0  f32.store
            local.get $j  i32.const 4  i32.add  local.set $j  br $znext
          end  end`;

function body(mode: 'copy' | 'add'): string {
  const inside = `
        local.get $ow  local.get $sW  i32.mul  local.get $kw  local.get $dW  i32.mul  i32.add  local.get $padLeft  i32.sub  local.set $iw
        ;; ih, iw inside the image (unsigned compare also rejects negatives)
        local.get $ih  local.get $inH  i32.lt_u  local.get $iw  local.get $inW  i32.lt_u  i32.and
        if
          local.get $x  local.get $b  local.get $inH  i32.mul  local.get $ih  i32.add  local.get $inW  i32.mul  local.get $iw  i32.add  local.get $cBytes  i32.mul  i32.add  local.set $src
${run(mode)}
${mode === 'copy' ? `        else\n${zeros}` : ''}
        end
        local.get $dst  local.get $cBytes  i32.add  local.set $dst`;
  const perTap = forLoop(
    'kh',
    'i32.const 0',
    'local.get $kH',
    `
      local.get $oh  local.get $sH  i32.mul  local.get $kh  local.get $dH  i32.mul  i32.add  local.get $padTop  i32.sub  local.set $ih
      ${forLoop('kw', 'i32.const 0', 'local.get $kW', inside)}`,
  );
  return `
  local.get $C  i32.const 2  i32.shl  local.set $cBytes
  local.get $col  local.set $dst
  ${forLoop('b', 'i32.const 0', 'local.get $batch', forLoop('oh', 'i32.const 0', 'local.get $outH', forLoop('ow', 'i32.const 0', 'local.get $outW', perTap)))}`;
}

/**
 * im2col for C = 1 (a first conv layer on grey images: one float per tap, where the run loops above
 * cost ~3 ns per float): per (b, oh, kh, kw) a strided walk along ow, iw advancing by the stride.
 */
const singleChannel = `
  ${forLoop(
    'b',
    'i32.const 0',
    'local.get $batch',
    forLoop(
      'oh',
      'i32.const 0',
      'local.get $outH',
      forLoop(
        'kh',
        'i32.const 0',
        'local.get $kH',
        `
    local.get $oh  local.get $sH  i32.mul  local.get $kh  local.get $dH  i32.mul  i32.add  local.get $padTop  i32.sub  local.set $ih
    local.get $x  local.get $b  local.get $inH  i32.mul  local.get $ih  i32.add  local.get $inW  i32.mul  i32.const 2  i32.shl  i32.add  local.set $src
    ${forLoop(
      'kw',
      'i32.const 0',
      'local.get $kW',
      `
      ;; dst = col + ((b·outH + oh)·outW·P + kh·kW + kw)·4, then P floats per ow
      local.get $col  local.get $b  local.get $outH  i32.mul  local.get $oh  i32.add  local.get $outW  i32.mul  local.get $kH  i32.mul  local.get $kW  i32.mul
      local.get $kh  local.get $kW  i32.mul  local.get $kw  i32.add  i32.add  i32.const 2  i32.shl  i32.add  local.set $dst
      local.get $kw  local.get $dW  i32.mul  local.get $padLeft  i32.sub  local.set $iw
      ${forLoop(
        'ow',
        'i32.const 0',
        'local.get $outW',
        `
        local.get $dst
        local.get $ih  local.get $inH  i32.lt_u  local.get $iw  local.get $inW  i32.lt_u  i32.and
        if (result f32)
          local.get $src  local.get $iw  i32.const 2  i32.shl  i32.add  f32.load
        else
          f32.const 0
        end
        f32.store
        local.get $dst  local.get $cBytes  i32.add  local.set $dst
        local.get $iw  local.get $sW  i32.add  local.set $iw`,
      )}`,
    )}`,
      ),
    ),
  )}`;

/** im2col(x, col, …): col[N, P] ← patches of x. */
export const IM2COL: WasmFunction = {
  name: 'im2col',
  params: { ...PARAMS },
  locals: { ...LOCALS },
  body: `
  local.get $C  i32.const 1  i32.eq
  if
    ;; here cBytes is the row stride of col, P·4 bytes
    local.get $kH  local.get $kW  i32.mul  i32.const 2  i32.shl  local.set $cBytes
    ${singleChannel}
  else
    ${body('copy')}
  end`,
};
/** col2im(dx, dcol, …): dx += patches in dcol (dx zeroed by the caller). Same parameters, x ↔ dx, col ↔ dcol. */
export const COL2IM: WasmFunction = { name: 'col2im', params: { ...PARAMS }, locals: { ...LOCALS }, body: body('add') };
