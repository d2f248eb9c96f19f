import { CANCELLED_REASON, CancelledError } from '@tq/contracts';
/** Thrown by trainModel when shouldStop() answers true: the job was cancelled between two batches. */
export class TrainingCancelledError extends CancelledError {
  constructor(
    readonly epoch: number,
    readonly step: number,
  ) {
    super(`${CANCELLED_REASON}: training stopped at epoch ${epoch}, step ${step}`);
  }
}
