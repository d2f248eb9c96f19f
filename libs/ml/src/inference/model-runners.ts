import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';

/** A loaded model that scores flat rows: [n, featureCount] in, [n, outputSize] out. */
export interface ModelRunner {
  readonly engine: 'onnxruntime' | 'tfjs';
  readonly outputSize: number;
  run(rows: Float32Array, n: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export interface OrtSessionOptions {
  executionProviders: string[];
  intraOpNumThreads: number;
  /**
   * onnxruntime's pool threads spin between runs (true: onnxruntime's own default when unset) or
   * sleep (false). Spinning keeps a core busy after each run: right for back-to-back batches, a
   * cost where the same cores answer HTTP between short runs (figures: @tq/config ortAllowSpinning).
   */
  allowSpinning?: boolean;
}

/** An ONNX graph from its bytes (wherever the store keeps them: no file path needed). */
export async function loadOrtRunner(
  bytes: Uint8Array,
  featureCount: number,
  opts: OrtSessionOptions,
): Promise<ModelRunner> {
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: opts.executionProviders,
    intraOpNumThreads: opts.intraOpNumThreads,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(opts.allowSpinning === undefined
      ? {}
      : { extra: { session: { intra_op: { allow_spinning: opts.allowSpinning ? '1' : '0' } } } }),
  });
  // Names from the session rather than assumed: any ONNX file with one input and one output runs.
  const [input, output] = [session.inputNames[0]!, session.outputNames[0]!];
  const run = async (rows: Float32Array, n: number): Promise<Float32Array> => {
    const out = await session.run({ [input]: new ort.Tensor('float32', rows, [n, featureCount]) });
    return out[output]!.data as Float32Array;
  };
  try {
    const outputSize = staticWidth(session.outputMetadata[0]) ?? (await run(new Float32Array(featureCount), 1)).length;
    return { engine: 'onnxruntime', outputSize, run, release: () => session.release() };
  } catch (err) {
    await session.release();
    throw err;
  }
}

/** Columns of a [N, ...] output whose non-batch dimensions are all numbers. */
function staticWidth(meta: ort.InferenceSession.ValueMetadata | undefined): number | undefined {
  if (!meta?.isTensor) return undefined;
  const dims = meta.shape.slice(1);
  return dims.every((d): d is number => typeof d === 'number') ? dims.reduce((a, b) => a * b, 1) : undefined;
}

/** A tfjs model through an IOHandler (the registry's: modelLoadHandler). */
export async function loadTfjsRunner(handler: tf.io.IOHandler): Promise<ModelRunner> {
  const model = await tf.loadLayersModel(handler);
  const inputShape = model.inputs[0]!.shape.slice(1) as number[];
  const outputSize = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  return {
    engine: 'tfjs',
    outputSize,
    async run(rows, n) {
      // One predict call per engine batch, told its size: tfjs would otherwise split it into batches of 32.
      return tf.tidy(
        () =>
          (
            model.predict(tf.tensor(rows, [n, ...inputShape]), { batchSize: n }) as tf.Tensor
          ).dataSync() as Float32Array,
      );
    },
    async release() {
      model.dispose();
    },
  };
}
