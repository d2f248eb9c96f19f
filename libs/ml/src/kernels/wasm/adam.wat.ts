import type { WasmFunction } from './assembler';

/**
 * adam(x, m, v, g, x2, m2, v2, n, β1, 1−β1, β2, 1−β2, lr, c1, c2, ε): the fused Adam update of
 * adam.kernel.ts in float32 SIMD, 4 lanes at a time, then a scalar tail, in tfjs' operation order:
 *   m2 = β1·m + (1−β1)·g;  v2 = β2·v + (1−β2)·g²;  x2 = x − ((m2/c1) / (sqrt(v2/c2) + ε))·lr
 * with c1 = 1−β1ᵗ, c2 = 1−β2ᵗ (1−β passed in, rounded from float64 as tfjs' scalars are).
 * Pointers are byte offsets in tfjs-wasm's heap.
 * Why in wasm: the update is 2 divisions and a square root per element; JS does them one float64
 * at a time (measured 1.3-1.5 ms for 200k parameters), wasm SIMD four float32 at a time.
 */
const step = (w: 'v' | 's') => {
  const [load, store, mul, add, sub, div, sqrt] =
    w === 'v'
      ? ['v128.load', 'v128.store', 'f32x4.mul', 'f32x4.add', 'f32x4.sub', 'f32x4.div', 'f32x4.sqrt']
      : ['f32.load', 'f32.store', 'f32.mul', 'f32.add', 'f32.sub', 'f32.div', 'f32.sqrt'];
  const k = (name: string) => `local.get $${w}${name}`;
  return `
      local.get $g  ${load}  local.set $${w}g
      local.get $m2  local.get $m  ${load}  ${k('b1')}  ${mul}  local.get $${w}g  ${k('a1')}  ${mul}  ${add}  local.tee $${w}m  ${store}
      local.get $v2  local.get $v  ${load}  ${k('b2')}  ${mul}  local.get $${w}g  local.get $${w}g  ${mul}  ${k('a2')}  ${mul}  ${add}  local.tee $${w}v  ${store}
      local.get $x2  local.get $x  ${load}
        local.get $${w}m  ${k('c1')}  ${div}
        local.get $${w}v  ${k('c2')}  ${div}  ${sqrt}  ${k('eps')}  ${add}
        ${div}  ${k('lr')}  ${mul}  ${sub}  ${store}`;
};

const advance = (bytes: number) =>
  ['x', 'm', 'v', 'g', 'x2', 'm2', 'v2']
    .map((p) => `local.get $${p}  i32.const ${bytes}  i32.add  local.set $${p}`)
    .join('\n      ');

const splats = ['b1', 'a1', 'b2', 'a2', 'lr', 'c1', 'c2', 'eps']
  .map((p) => `local.get $${p}  f32x4.splat  local.set $v${p}\n  local.get $${p}  local.set $s${p}`)
  .join('\n  ');

export const ADAM: WasmFunction = {
  name: 'adam',
  params: {
    x: 'i32',
    m: 'i32',
    v: 'i32',
    g: 'i32',
    x2: 'i32',
    m2: 'i32',
    v2: 'i32',
    n: 'i32',
    b1: 'f32',
    a1: 'f32',
    b2: 'f32',
    a2: 'f32',
    lr: 'f32',
    c1: 'f32',
    c2: 'f32',
    eps: 'f32',
  },
  locals: {
    sb1: 'f32',
    sa1: 'f32',
    sb2: 'f32',
    sa2: 'f32',
    slr: 'f32',
    sc1: 'f32',
    sc2: 'f32',
    seps: 'f32',
    sg: 'f32',
    sm: 'f32',
    sv: 'f32',
    vb1: 'v128',
    va1: 'v128',
    vb2: 'v128',
    va2: 'v128',
    vlr: 'v128',
    vc1: 'v128',
    vc2: 'v128',
    veps: 'v128',
    vg: 'v128',
    vm: 'v128',
    vv: 'v128',
  },
  body: `
  ${splats}
  block $vdone
  loop $vl
    local.get $n  i32.const 4  i32.lt_u  br_if $vdone
${step('v')}
      ${advance(16)}
      local.get $n  i32.const 4  i32.sub  local.set $n
      br $vl
  end
  end
  block $sdone
  loop $sl
    local.get $n  i32.eqz  br_if $sdone
${step('s')}
      ${advance(4)}
      local.get $n  i32.const 1  i32.sub  local.set $n
      br $sl
  end
  end`,
};
