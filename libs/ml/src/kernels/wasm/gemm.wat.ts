import type { ValType, WasmFunction } from './assembler';

/**
 * gemm(a, b, c, M, K, N, sAi, sAk): C[M,N] = A·B in float32, with A read through strides (element
 * (i,k) at a + 4·(i·sAi + k·sAk), so A or Aᵀ need no copy), B row-major [K,N], C row-major [M,N];
 * a, b, c are byte offsets in tfjs-wasm's heap.
 *
 * Register tiles of 4 rows × 8 columns: per k, two 4-lane loads of B's row, one splat load of A per
 * row, eight multiply-adds into eight v128 accumulators (wasm SIMD has no FMA). Rows left over use
 * a 1×8 tile, columns left over (N mod 8) a scalar loop. No packing (the cache blocking below keeps
 * the panels in L1/L2 instead), which is what makes it beat xnnpack's fully-connected operator here:
 * that one repacks the weights on every call, and training weights change every step.
 * Measured (1 thread, Zen 3): 36-39 GFLOP/s on the MLP's products, 35 on 1000³; power-of-two row
 * strides alias in L1 (1024³: ~22). wasm SIMD's ceiling here is ~48 (4 lanes × 2 mul + 2 add pipes).
 */

const rows = (mr: number, f: (r: number) => string) => Array.from({ length: mr }, (_, r) => f(r)).join('\n');

/**
 * Rows per register tile: MR×2 accumulators + 2 B vectors + 1 splat must fit x64's 16 XMM registers.
 * Measured (GFLOP/s on [128,784]·[784,256] / [128,256]·[256,128]): MR 3: 33/38, 4: 35/40, 5: 24/24, 6: 28/28.
 */
const MR = 4;

/**
 * How A's values are addressed: 'contiguous' when A's rows are adjacent floats (A read transposed,
 * sAi = 1): one pointer with constant offsets, 3 fewer adds per k (measured 7-15% faster); else one
 * pointer per row. (Unrolling k by 4 for row-major A, with constant offsets from the row pointers,
 * measured 25% slower: the larger loop body spills.)
 */
type AMode = 'contiguous' | 'strided';

/** One k: B's row (two vectors) times each row's A value into the accumulators; A and B advance. */
function kStep(mr: number, mode: AMode): string {
  const splat = (r: number) =>
    mode === 'contiguous'
      ? `local.get $pa0  v128.load32_splat offset=${4 * r}`
      : `local.get $pa${r}  v128.load32_splat`;
  const advance =
    mode === 'contiguous'
      ? '      local.get $pa0  local.get $kStep  i32.add  local.set $pa0'
      : rows(mr, (r) => `      local.get $pa${r}  local.get $kStep  i32.add  local.set $pa${r}`);
  return `      local.get $pb  v128.load  local.set $b0
      local.get $pb  v128.load offset=16  local.set $b1
${rows(
  mr,
  (r) => `      ${splat(r)}  local.set $s
      local.get $c${r}0  local.get $s  local.get $b0  f32x4.mul  f32x4.add  local.set $c${r}0
      local.get $c${r}1  local.get $s  local.get $b1  f32x4.mul  f32x4.add  local.set $c${r}1`,
)}
      local.get $pb  local.get $bStep  i32.add  local.set $pb
${advance}`;
}

/** The mr×8 tile at rows i0.., columns j0..: C (or 0 on the first k block) plus the block's products. */
function tile(mr: number, label: string, mode: AMode): string {
  return `
    local.get $c  local.get $i0  local.get $N  i32.mul  local.get $j0  i32.add  i32.const 2  i32.shl  i32.add  local.set $pc
    local.get $k0  i32.eqz
    if
${rows(mr, (r) => `      f32.const 0  f32x4.splat  local.tee $c${r}0  local.set $c${r}1`)}
    else
${rows(
  mr,
  (r) => `      local.get $pc  local.get $bStep  i32.const ${r}  i32.mul  i32.add  local.tee $pb
      v128.load  local.set $c${r}0  local.get $pb  v128.load offset=16  local.set $c${r}1`,
)}
    end
    ;; A row pointers at column k0, B panel pointer at row k0
    local.get $a  local.get $i0  local.get $sAi  i32.mul  local.get $k0  local.get $sAk  i32.mul  i32.add  i32.const 2  i32.shl  i32.add  local.set $pa0
${mode === 'contiguous' ? '' : rows(mr - 1, (r) => `    local.get $pa${r}  local.get $rowStep  i32.add  local.set $pa${r + 1}`)}
    local.get $b  local.get $k0  local.get $N  i32.mul  local.get $j0  i32.add  i32.const 2  i32.shl  i32.add  local.set $pb
    local.get $kLen  local.set $k
    block $${label}done
    loop $${label}
      local.get $k  i32.eqz  br_if $${label}done
${kStep(mr, mode)}
      local.get $k  i32.const 1  i32.sub  local.set $k
      br $${label}
    end
    end
${rows(
  mr,
  (r) => `    local.get $pc  local.get $c${r}0  v128.store
    local.get $pc  local.get $c${r}1  v128.store offset=16
    local.get $pc  local.get $bStep  i32.add  local.set $pc`,
)}`;
}

/** `for (; i0 + step <= iEnd; i0 += step) body` */
function rowLoop(step: number, label: string, body: string): string {
  return `
    block $${label}done
    loop $${label}
      local.get $i0  i32.const ${step}  i32.add  local.get $iEnd  i32.gt_u  br_if $${label}done
${body}
      local.get $i0  i32.const ${step}  i32.add  local.set $i0
      br $${label}
    end
    end`;
}

/**
 * Cache blocking: K is walked in blocks of KC and rows in blocks of MC, so that the A block
 * (MC·KC floats, 64 KB) stays in L2 while the 8-column B panels pass over it, and each B panel
 * block (KC·32 bytes) stays in L1 across the row tiles; C tiles carry partial sums between K blocks.
 * Without it, 1024³ ran at ~22 GFLOP/s and the conv gradients streamed their panels from L3.
 */
const KC = 256;
const MC = 64;

/** The blocked loop nest over the full 8-column panels. */
const panels = (mode: AMode) => `  i32.const 0  local.set $k0
  block $kbdone
  loop $kb
    local.get $k0  local.get $K  i32.ge_u  local.get $k0  i32.const 0  i32.ne  i32.and  br_if $kbdone
    ;; kLen = min(KC, K - k0)
    local.get $K  local.get $k0  i32.sub  local.tee $kLen  i32.const ${KC}  local.get $kLen  i32.const ${KC}  i32.lt_u  select  local.set $kLen
    i32.const 0  local.set $ib
    block $ibdone
    loop $ibl
      local.get $ib  local.get $M  i32.ge_u  br_if $ibdone
      ;; iEnd = min(ib + MC, M)
      local.get $ib  i32.const ${MC}  i32.add  local.tee $iEnd  local.get $M  local.get $iEnd  local.get $M  i32.lt_u  select  local.set $iEnd
      i32.const 0  local.set $j0
      block $jdone
      loop $jl
        local.get $j0  i32.const 8  i32.add  local.get $N  i32.gt_u  br_if $jdone
        local.get $ib  local.set $i0
${rowLoop(MR, 'rm', tile(MR, 'km', mode))}
${rowLoop(1, 'r1', tile(1, 'k1', mode))}
        local.get $j0  i32.const 8  i32.add  local.set $j0
        br $jl
      end
      end
      local.get $ib  i32.const ${MC}  i32.add  local.set $ib
      br $ibl
    end
    end
    local.get $k0  i32.const ${KC}  i32.add  local.set $k0
    br $kb
  end
  end
`;

const body = `
  local.get $sAi  i32.const 2  i32.shl  local.set $rowStep
  local.get $sAk  i32.const 2  i32.shl  local.set $kStep
  local.get $N  i32.const 2  i32.shl  local.set $bStep
  local.get $sAi  i32.const 1  i32.eq
  if
${panels('contiguous')}
  else
${panels('strided')}
  end
  ;; columns j0..N-1 (fewer than 8): scalar dot products
  i32.const 0  local.set $i0
  block $sidone
  loop $sil
    local.get $i0  local.get $M  i32.ge_u  br_if $sidone
    local.get $j0  local.set $j
    block $sjdone
    loop $sjl
      local.get $j  local.get $N  i32.ge_u  br_if $sjdone
      local.get $a  local.get $i0  local.get $sAi  i32.mul  i32.const 2  i32.shl  i32.add  local.set $pa0
      local.get $b  local.get $j  i32.const 2  i32.shl  i32.add  local.set $pb
      f32.const 0  local.set $acc
      local.get $K  local.set $k
      block $skdone
      loop $skl
        local.get $k  i32.eqz  br_if $skdone
        local.get $acc  local.get $pa0  f32.load  local.get $pb  f32.load  f32.mul  f32.add  local.set $acc
        local.get $pa0  local.get $kStep  i32.add  local.set $pa0
        local.get $pb  local.get $bStep  i32.add  local.set $pb
        local.get $k  i32.const 1  i32.sub  local.set $k
        br $skl
      end
      end
      local.get $c  local.get $i0  local.get $N  i32.mul  local.get $j  i32.add  i32.const 2  i32.shl  i32.add  local.get $acc  f32.store
      local.get $j  i32.const 1  i32.add  local.set $j
      br $sjl
    end
    end
    local.get $i0  i32.const 1  i32.add  local.set $i0
    br $sil
  end
  end`;

export const GEMM: WasmFunction = {
  name: 'gemm',
  params: { a: 'i32', b: 'i32', c: 'i32', M: 'i32', K: 'i32', N: 'i32', sAi: 'i32', sAk: 'i32' },
  locals: {
    i0: 'i32',
    j0: 'i32',
    j: 'i32',
    k: 'i32',
    k0: 'i32',
    kLen: 'i32',
    ib: 'i32',
    iEnd: 'i32',
    pb: 'i32',
    pc: 'i32',
    rowStep: 'i32',
    kStep: 'i32',
    bStep: 'i32',
    acc: 'f32',
    s: 'v128',
    b0: 'v128',
    b1: 'v128',
    ...Object.fromEntries(
      Array.from({ length: MR }, (_, r): [string, ValType][] => [
        [`pa${r}`, 'i32'],
        [`c${r}0`, 'v128'],
        [`c${r}1`, 'v128'],
      ]).flat(),
    ),
  },
  body,
};
