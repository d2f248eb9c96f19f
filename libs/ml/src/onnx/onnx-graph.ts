import {
  AttrType,
  DataType,
  encodeModel,
  type AttributeMsg,
  type DataTypeCode,
  type NodeMsg,
  type TensorMsg,
  type ValueInfoMsg,
} from './onnx-proto';

/** An attribute value with its ONNX type made explicit (1 and 1.0 are the same number in JS). */
export type Attr =
  | { t: 'f'; v: number }
  | { t: 'i'; v: number }
  | { t: 'ints'; v: number[] }
  | { t: 'floats'; v: number[] }
  | { t: 's'; v: string }
  | { t: 'strings'; v: string[] };
export const attr = {
  float: (v: number): Attr => ({ t: 'f', v }),
  int: (v: number): Attr => ({ t: 'i', v }),
  ints: (v: number[]): Attr => ({ t: 'ints', v }),
  floats: (v: number[]): Attr => ({ t: 'floats', v }),
  str: (v: string): Attr => ({ t: 's', v }),
  strs: (v: string[]): Attr => ({ t: 'strings', v }),
};

/** Lowest opset the writer supports: Softmax's per-axis meaning and per-axis Q/DQ start at 13. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 21;

/** ONNX IR version that goes with an opset (onnx/helper.py VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset <= 13) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

type TypedData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

/** Builds one ONNX graph: unique tensor names, initializers as raw little-endian bytes, typed attributes. */
export class OnnxGraph {
  private readonly nodes: NodeMsg[] = [];
  private readonly initializers: TensorMsg[] = [];
  private readonly used = new Set<string>();
  private readonly domains = new Set<string>();

  /** A fresh tensor name starting with `hint`. */
  name(hint: string): string {
    const n = this.unusedName(hint);
    this.used.add(n);
    return n;
  }

  /** The name `name(hint)` would give, not taken yet (to pin it as a node output later). */
  unusedName(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 't';
    let n = base;
    for (let k = 1; this.used.has(n); k++) n = `${base}_${k}`;
    return n;
  }

  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`tensor name "${name}" is taken`);
    this.used.add(name);
    return name;
  }

  constant(hint: string, dims: number[], data: TypedData): string {
    const name = this.name(hint);
    this.initializers.push({
      name,
      dims,
      dataType: dataTypeOf(data),
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
    });
    return name;
  }

  floats(hint: string, dims: number[], data: ArrayLike<number>): string {
    return this.constant(hint, dims, Float32Array.from(data));
  }

  int64s(hint: string, values: number[]): string {
    return this.constant(hint, [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  /** Adds a node; returns its (first) output name. `output` pins the name (graph outputs). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, Attr> = {},
    opts: { output?: string; domain?: string } = {},
  ): string {
    const output = opts.output !== undefined ? this.reserve(opts.output) : this.name(opType.toLowerCase());
    if (opts.domain) this.domains.add(opts.domain);
    this.nodes.push({
      input: inputs,
      output: [output],
      name: `${opType}_${this.nodes.length}`,
      opType,
      domain: opts.domain ?? '',
      attribute: Object.entries(attrs).map(([name, a]) => toAttribute(name, a)),
    });
    return output;
  }

  /** A node with several outputs (e.g. DynamicQuantizeLinear → y, y_scale, y_zero_point). */
  nodeOutputs(opType: string, inputs: string[], count: number, attrs: Record<string, Attr> = {}): string[] {
    const outputs = Array.from({ length: count }, (_, k) => this.name(`${opType.toLowerCase()}_${k}`));
    this.nodes.push({
      input: inputs,
      output: outputs,
      name: `${opType}_${this.nodes.length}`,
      opType,
      domain: '',
      attribute: Object.entries(attrs).map(([name, a]) => toAttribute(name, a)),
    });
    return outputs;
  }

  /**
   * Serialises the graph. `input` / `output` may list several tensors; `domainVersions` sets the
   * opset of a non-default domain (1 when absent), e.g. ai.onnx.ml 2 for LabelEncoder's float values.
   */
  encode(opts: {
    opset: number;
    input: ValueInfoMsg | ValueInfoMsg[];
    output: ValueInfoMsg | ValueInfoMsg[];
    doc: string;
    metadata: Record<string, string>;
    name?: string;
    domainVersions?: Record<string, number>;
  }): Uint8Array {
    return encodeModel({
      irVersion: irVersionFor(opts.opset),
      opsetImport: [
        { domain: '', version: opts.opset },
        ...[...this.domains].map((domain) => ({ domain, version: opts.domainVersions?.[domain] ?? 1 })),
      ],
      producerName: 'tensorqueue',
      producerVersion: '1',
      docString: opts.doc,
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.name ?? 'tfjs_layers_model',
        node: this.nodes,
        initializer: this.initializers,
        input: [opts.input].flat(),
        output: [opts.output].flat(),
      },
    });
  }
}

/** A float tensor's value info with a symbolic batch dimension "N". */
export function floatValueInfo(name: string, dims: Array<number | string>): ValueInfoMsg {
  return {
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

function dataTypeOf(data: TypedData): DataTypeCode {
  if (data instanceof Float32Array) return DataType.FLOAT;
  if (data instanceof Int8Array) return DataType.INT8;
  if (data instanceof Uint8Array) return DataType.UINT8;
  if (data instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

function toAttribute(name: string, a: Attr): AttributeMsg {
  switch (a.t) {
    case 'f':
      return { name, type: AttrType.FLOAT, f: a.v };
    case 'i':
      return { name, type: AttrType.INT, i: a.v };
    case 'ints':
      return { name, type: AttrType.INTS, ints: a.v };
    case 'floats':
      return { name, type: AttrType.FLOATS, floats: a.v };
    case 's':
      return { name, type: AttrType.STRING, s: new TextEncoder().encode(a.v) };
    case 'strings':
      return { name, type: AttrType.STRINGS, strings: a.v.map((v) => new TextEncoder().encode(v)) };
  }
}
