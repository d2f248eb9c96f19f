import * as tf from '@tensorflow/tfjs';
import { FUSED_ADAM, type FusedAdamAttrs } from './adam.kernel';

/**
 * Routes every tf.AdamOptimizer (tf.train.adam, model.fit's 'adam', createOptimizer) through the
 * fused TQFusedAdam kernel when the current backend has it.
 *
 * Why a prototype patch: tfjs optimizers are compositions of ops, not kernels, so there is no
 * registry hook for them; replacing applyGradients is the one place that reaches every Adam the
 * product creates while keeping the class, its className 'Adam', its slot variables and
 * getWeights/setWeights (checkpoints) exactly as stock. The replacement mirrors tfjs 4.22's
 * method line by line except the per-variable arithmetic; on a backend without the kernel (or
 * once uninstalled) the stock method runs.
 */

interface Slot {
  originalName: string;
  variable: tf.Variable;
}
/** tfjs 4.22 AdamOptimizer state (private in its typings; read and written exactly as its own method does). */
interface AdamInternals extends FusedAdamAttrs {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: Slot[];
  accumulatedSecondMoment: Slot[];
  incrementIterations(): void;
}
type Grads = Parameters<tf.AdamOptimizer['applyGradients']>[0];

// Unbound on purpose: put back on the prototype on uninstall and called with .call(this).
// eslint-disable-next-line @typescript-eslint/unbound-method
const stockApplyGradients = tf.AdamOptimizer.prototype.applyGradients;

function slot(name: string, value: tf.Variable): Slot {
  return { originalName: name, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
}

function fusedApplyGradients(this: tf.AdamOptimizer, variableGradients: Grads): void {
  if (!tf.getKernel(FUSED_ADAM, tf.getBackend())) return stockApplyGradients.call(this, variableGradients);
  const self = this as unknown as AdamInternals;
  const list: { name: string; tensor: tf.Tensor | undefined }[] = Array.isArray(variableGradients)
    ? variableGradients
    : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
  const attrs: FusedAdamAttrs = {
    beta1: self.beta1,
    beta2: self.beta2,
    epsilon: self.epsilon,
    learningRate: self.learningRate,
  };
  tf.tidy(() => {
    list.forEach(({ name, tensor: gradient }, i) => {
      const value = tf.engine().registeredVariables[name];
      if (!value) throw new Error(`Adam: no variable named "${name}"`);
      self.accumulatedFirstMoment[i] ??= slot(`${name}/m`, value);
      self.accumulatedSecondMoment[i] ??= slot(`${name}/v`, value);
      if (gradient == null) return;
      const m = self.accumulatedFirstMoment[i].variable,
        v = self.accumulatedSecondMoment[i].variable;
      // The kernel's outputs: the new x, m and v.
      const [x2, m2, v2] = tf
        .engine()
        .runKernel<[tf.Tensor, tf.Tensor, tf.Tensor]>(
          FUSED_ADAM,
          { x: value, m, v, g: gradient, accBeta1: self.accBeta1, accBeta2: self.accBeta2 },
          attrs as unknown as tf.NamedAttrMap,
        );
      m.assign(m2);
      v.assign(v2);
      value.assign(x2);
    });
    self.accBeta1.assign(tf.mul(self.accBeta1, self.beta1));
    self.accBeta2.assign(tf.mul(self.accBeta2, self.beta2));
  });
  self.incrementIterations();
}

export function patchAdam(): void {
  tf.AdamOptimizer.prototype.applyGradients = fusedApplyGradients;
}

export function unpatchAdam(): void {
  tf.AdamOptimizer.prototype.applyGradients = stockApplyGradients;
}
