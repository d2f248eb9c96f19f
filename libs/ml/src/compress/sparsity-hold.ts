import type * as tf from '@tensorflow/tfjs';
import type { TrainPruneSpec } from '@tq/contracts';
import { HeldMasks, magnitudeMasks, polynomialSparsity } from './prune';

/** Mask updates over a polynomial schedule (Zhu & Gupta prune every Δt steps, not every step). */
const SCHEDULE_UPDATES = 16;
/**
 * The share of the steps over which the sparsity rises; the rest trains at the target with the
 * masks fixed, so the network recovers from the last prune (Zhu & Gupta end pruning before training
 * ends for the same reason).
 */
const RAMP_SHARE = 0.75;

/**
 * Holds `fit.prune`'s sparsity on a model while it trains: whoever owns the weights (trainModel in
 * one process, the parameter server in a data-parallel run) calls `afterStep` after every optimizer
 * step, and the masked weights are zeroed again, whichever kernels applied the update.
 * oneShot: masks at the target from the start; polynomial: masks recomputed SCHEDULE_UPDATES times
 * as the sparsity rises over the first RAMP_SHARE of the steps, the last at the target.
 * Made after a checkpoint is restored: oneShot masks are the restored weights' smallest (their
 * zeros), and a polynomial schedule updates its masks at the first step wherever it stands.
 */
export class SparsityHold {
  private masks: HeldMasks;
  private updates = 0;
  private atTarget = false;

  constructor(
    private readonly model: tf.LayersModel,
    private readonly spec: TrainPruneSpec,
  ) {
    this.masks = new HeldMasks(
      magnitudeMasks(model, {
        scope: spec.scope,
        sparsity: spec.schedule === 'oneShot' ? spec.sparsity : 0,
      }),
    );
    this.masks.apply();
  }

  /** After optimizer step `step` (1-based, or a fraction: async runs count mean steps) of `steps`: the masks due, re-applied. */
  afterStep(step: number, steps: number): void {
    if (this.spec.schedule === 'polynomial' && !this.atTarget) {
      const ramp = Math.max(1, Math.ceil(RAMP_SHARE * steps));
      // Due every ramp / SCHEDULE_UPDATES steps; a run resumed from a checkpoint updates at once.
      if (step >= ((this.updates + 1) * ramp) / SCHEDULE_UPDATES) {
        const at = Math.min(step, ramp);
        this.updates = Math.floor((SCHEDULE_UPDATES * at) / ramp);
        this.atTarget = at >= ramp;
        const sparsity = polynomialSparsity(this.spec.sparsity, at, ramp);
        this.masks.dispose();
        this.masks = new HeldMasks(magnitudeMasks(this.model, { scope: this.spec.scope, sparsity }));
      }
    }
    this.masks.apply();
  }

  /** Frees the masks' tensors (training ended). */
  dispose(): void {
    this.masks.dispose();
  }
}
