/** Thrown by trainModel when shouldStop() answers true: the job was cancelled between two batches. */
export class TrainingCancelledError extends Error {
  constructor(readonly epoch: number, readonly step: number) {
    super(`training cancelled at epoch ${epoch}, step ${step}`);
  }
}
