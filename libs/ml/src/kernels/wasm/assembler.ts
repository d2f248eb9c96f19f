/**
 * A tiny assembler for the flat (stack-style, no s-expressions) WebAssembly text the SIMD kernels are
 * written in, producing a module that imports tfjs-wasm's own memory so kernels read and write
 * tensors in place.
 *
 * Hand-written rather than using wabt: the kernels need ~60 opcodes of straight-line code and
 * loops, and a WAT toolchain (wabt.js is an emscripten build of several MB) would be loaded by every
 * worker for that. What it accepts: `block $l` / `loop $l` / `if [(result t)]` / `else` / `end`, `br[_if] $l`,
 * `local.get|set|tee $name`, `i32.const n`, `f32.const x`, loads/stores with `offset=n`, and the
 * plain opcodes in OPS. Anything else is an error naming the line. Comments start with `;;`.
 */

export type ValType = 'i32' | 'f32' | 'v128';
/** Node's WebAssembly global; the project's tsconfig has no DOM lib, where its typings live. */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
};
export interface WasmMemory {
  buffer: ArrayBuffer;
}
export interface WasmFunction {
  name: string;
  params: Record<string, ValType>;
  locals: Record<string, ValType>;
  body: string;
}

const TYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/** A SIMD opcode: the 0xfd prefix, then the index as an unsigned LEB128. */
const simd = (index: number) => (index < 0x80 ? [0xfd, index] : [0xfd, (index & 0x7f) | 0x80, index >> 7]);

/** Opcodes without immediates. */
const OPS: Record<string, number[]> = {
  return: [0x0f],
  drop: [0x1a],
  select: [0x1b],
  'i32.eqz': [0x45],
  'i32.eq': [0x46],
  'i32.ne': [0x47],
  'i32.lt_s': [0x48],
  'i32.lt_u': [0x49],
  'i32.gt_s': [0x4a],
  'i32.gt_u': [0x4b],
  'i32.le_s': [0x4c],
  'i32.le_u': [0x4d],
  'i32.ge_s': [0x4e],
  'i32.ge_u': [0x4f],
  'i32.add': [0x6a],
  'i32.sub': [0x6b],
  'i32.mul': [0x6c],
  'i32.div_u': [0x6e],
  'i32.rem_u': [0x70],
  'i32.and': [0x71],
  'i32.or': [0x72],
  'i32.shl': [0x74],
  'i32.shr_u': [0x76],
  'f32.gt': [0x5e],
  'f32.convert_i32_s': [0xb2],
  'f32.sqrt': [0x91],
  'f32.add': [0x92],
  'f32.sub': [0x93],
  'f32.mul': [0x94],
  'f32.div': [0x95],
  'f32.max': [0x97],
  'f32x4.splat': simd(0x13),
  'f32x4.eq': simd(0x41),
  'f32x4.gt': simd(0x44),
  'v128.and': simd(0x4e),
  'v128.andnot': simd(0x4f),
  'v128.or': simd(0x50),
  'v128.bitselect': simd(0x52),
  'f32x4.pmax': simd(0xeb),
  'f32.eq': [0x5b],
  'f32x4.sqrt': simd(0xe3),
  'f32x4.add': simd(0xe4),
  'f32x4.sub': simd(0xe5),
  'f32x4.mul': simd(0xe6),
  'f32x4.div': simd(0xe7),
  'f32x4.max': simd(0xe9),
};
/** Memory instructions: opcode bytes and natural alignment (log2 bytes). */
const MEM: Record<string, [number[], number]> = {
  'i32.load': [[0x28], 2],
  'f32.load': [[0x2a], 2],
  'i32.store': [[0x36], 2],
  'f32.store': [[0x38], 2],
  'v128.load': [simd(0x00), 4],
  'v128.load32_splat': [simd(0x09), 2],
  'v128.store': [simd(0x0b), 4],
};

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];

function assembleBody(fn: WasmFunction): number[] {
  const names = [...Object.keys(fn.params), ...Object.keys(fn.locals)];
  const labels: (string | undefined)[] = [];
  const code: number[] = [];
  fn.body.split('\n').forEach((raw, lineNo) => {
    const tokens = raw.replace(/;;.*$/, '').trim().split(/\s+/).filter(Boolean);
    const fail = (why: string) => new Error(`wasm ${fn.name} line ${lineNo + 1} "${raw.trim()}": ${why}`);
    const next = () => {
      const t = tokens.shift();
      if (t === undefined) throw fail('missing operand');
      return t;
    };
    const named = (t: string) => t.replace(/^\$/, '');
    while (tokens.length) {
      const op = next();
      if (op === 'block' || op === 'loop' || op === 'if') {
        labels.push(tokens[0]?.startsWith('$') ? named(next()) : undefined);
        // Block type: none, or `(result f32)` etc. for a block leaving one value.
        let blockType = 0x40;
        if (tokens[0] === '(result') {
          next();
          const t = TYPE[next().replace(/\)$/, '') as ValType];
          if (t === undefined) throw fail('unknown result type');
          blockType = t;
        }
        code.push({ block: 0x02, loop: 0x03, if: 0x04 }[op], blockType);
      } else if (op === 'else') code.push(0x05);
      else if (op === 'end') {
        if (labels.length === 0) throw fail('end without block');
        labels.pop();
        code.push(0x0b);
      } else if (op === 'br' || op === 'br_if') {
        const i = labels.lastIndexOf(named(next()));
        if (i < 0) throw fail('unknown label');
        code.push(op === 'br' ? 0x0c : 0x0d, ...uleb(labels.length - 1 - i));
      } else if (op === 'local.get' || op === 'local.set' || op === 'local.tee') {
        const i = names.indexOf(named(next()));
        if (i < 0) throw fail('unknown local');
        code.push({ 'local.get': 0x20, 'local.set': 0x21, 'local.tee': 0x22 }[op], ...uleb(i));
      } else if (op === 'i32.const') code.push(0x41, ...sleb(Number(next())));
      else if (op === 'f32.const') code.push(0x43, ...new Uint8Array(new Float32Array([Number(next())]).buffer));
      else if (Object.hasOwn(MEM, op)) {
        const [bytes, align] = MEM[op]!; // own key, checked above
        let offset = 0;
        while (tokens[0]?.startsWith('offset=')) offset = Number(next().slice('offset='.length));
        code.push(...bytes, ...uleb(align), ...uleb(offset));
      } else if (Object.hasOwn(OPS, op)) code.push(...OPS[op]!);
      else throw fail(`unsupported instruction ${op}`);
    }
  });
  if (labels.length) throw new Error(`wasm ${fn.name}: ${labels.length} block(s) not closed`);
  code.push(0x0b);
  const localDecls = Object.values(fn.locals).map((t) => [1, TYPE[t]]);
  const body = [...vec(localDecls), ...code];
  return [...uleb(body.length), ...body];
}

/**
 * `for (v = from; v < to; v++) body` as flat WAT; `from` and `to` are WAT expressions leaving an
 * i32, evaluated each time (`to`) or once (`from`). Signed comparison.
 */
export function forLoop(v: string, from: string, to: string, body: string): string {
  return `${from}  local.set $${v}
  block $${v}_done
  loop $${v}_next
    local.get $${v}  ${to}  i32.ge_s  br_if $${v}_done
${body}
    local.get $${v}  i32.const 1  i32.add  local.set $${v}
    br $${v}_next
  end
  end`;
}

/** Assembles `functions` (exported by name) into a module importing `env.memory`, and instantiates it on `memory`. */
export function instantiate(
  memory: WasmMemory,
  functions: WasmFunction[],
): Record<string, (...args: number[]) => number | void> {
  const types = functions.map((f) => [0x60, ...vec(Object.values(f.params).map((t) => [TYPE[t]])), 0x00]);
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec([[...str('env'), ...str('memory'), 0x02, 0x00, 0x00]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(functions.map(assembleBody))),
  ];
  const module = new WebAssembly.Module(new Uint8Array(bytes));
  return new WebAssembly.Instance(module, { env: { memory } }).exports as Record<
    string,
    (...args: number[]) => number | void
  >;
}
