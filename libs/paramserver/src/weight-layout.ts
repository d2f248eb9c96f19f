import * as tf from '@tensorflow/tfjs';
import { trainableVariables } from '@tq/ml';

/**
 * How a model's variables line up in one flat Float32Array: trainable variables first (in the
 * model's weight order, the order optimizers key their slots by), then non-trainable ones (batch
 * normalisation statistics). Positions, not tfjs variable names, identify a variable on the wire:
 * names get per-process counters (dense_Dense3) and differ between workers.
 */
export class WeightLayout {
  readonly trainableFloats: number;
  readonly totalFloats: number;

  private constructor(
    readonly trainable: tf.Variable[],
    readonly frozen: tf.Variable[],
  ) {
    this.trainableFloats = trainable.reduce((n, v) => n + v.size, 0);
    this.totalFloats = this.trainableFloats + frozen.reduce((n, v) => n + v.size, 0);
  }

  static of(model: tf.LayersModel): WeightLayout {
    const trainable = trainableVariables(model);
    const seen = new Set(trainable.map((v) => v.name));
    const frozen: tf.Variable[] = [];
    for (const w of model.nonTrainableWeights) {
      const v = w.read() as tf.Variable; // LayerVariable.read() returns the backing tf.Variable
      if (!seen.has(v.name)) {
        seen.add(v.name);
        frozen.push(v);
      }
    }
    for (const v of [...trainable, ...frozen])
      if (v.dtype !== 'float32') throw new Error(`variable ${v.name} is ${v.dtype}; only float32 is supported`);
    return new WeightLayout(trainable, frozen);
  }

  /** Shapes in order: two processes exchange weights only if their signatures are equal. */
  signature(): string {
    const shapes = (vs: tf.Variable[]) => vs.map((v) => v.shape.join('x')).join(',');
    return `${shapes(this.trainable)}|${shapes(this.frozen)}`;
  }

  /** All variables' values, trainable then frozen. */
  readWeights(out: Float32Array = new Float32Array(this.totalFloats)): Float32Array {
    let o = 0;
    for (const v of [...this.trainable, ...this.frozen]) {
      out.set(v.dataSync(), o);
      o += v.size;
    }
    return out;
  }

  /** Assigns every variable from a flat array laid out as readWeights writes it. */
  writeWeights(flat: Float32Array): void {
    if (flat.length !== this.totalFloats)
      throw new Error(`weights hold ${flat.length} floats, the model has ${this.totalFloats}`);
    this.assign([...this.trainable, ...this.frozen], flat, 0);
  }

  /** Assigns only the non-trainable variables from `flat` starting at `offset`. */
  writeFrozen(flat: Float32Array, offset = this.trainableFloats): void {
    this.assign(this.frozen, flat, offset);
  }

  /**
   * A gradient payload: the trainable gradients in layout order, then the worker's current
   * non-trainable values (batch statistics it updated in its forward pass), which the aggregator
   * averages. Variables absent from `grads` (no gradient) count as zeros.
   */
  packGradients(grads: tf.NamedTensorMap, out: Float32Array = new Float32Array(this.totalFloats)): Float32Array {
    let o = 0;
    for (const v of this.trainable) {
      const g = grads[v.name];
      if (g) out.set(g.dataSync(), o);
      else out.fill(0, o, o + v.size);
      o += v.size;
    }
    for (const v of this.frozen) {
      out.set(v.dataSync(), o);
      o += v.size;
    }
    return out;
  }

  /**
   * Gradient tensors keyed by this process's variable names, from the trainable part of `flat`
   * times `scale` (the copy each tensor needs anyway does the scaling). The caller disposes them.
   */
  gradientMap(flat: Float32Array, scale = 1): tf.NamedTensorMap {
    const map: tf.NamedTensorMap = {};
    let o = 0;
    for (const v of this.trainable) {
      // A copy, not subarray: some backends keep a reference to the array, which the caller reuses.
      let part: Float32Array;
      if (scale === 1) part = flat.slice(o, o + v.size);
      else {
        part = new Float32Array(v.size);
        for (let i = 0; i < v.size; i++) part[i] = flat[o + i]! * scale;
      }
      map[v.name] = tf.tensor(part, v.shape, 'float32');
      o += v.size;
    }
    return map;
  }

  private assign(vars: tf.Variable[], flat: Float32Array, offset: number): void {
    let o = offset;
    for (const v of vars) {
      const t = tf.tensor(flat.slice(o, o + v.size), v.shape, 'float32');
      v.assign(t);
      t.dispose();
      o += v.size;
    }
  }
}
