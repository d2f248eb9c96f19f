/**
 * @tq/tables: user tables (CSV / JSONL) to model inputs. Read (readTable) → profile (profileTable)
 * → fit on training rows (prepareTable / fitPreprocessing) → encode rows or records (RowEncoder,
 * encodeRecords) → the same preprocessing in ONNX (preprocessingToOnnx). See README.md.
 */
export * from './cells';
export * from './limits';
export * from './table-source';
export { readTable, type ReadOptions } from './read-table';
export { malformedReason, malformedRowError } from './malformed-rows';
export { profileTable, type ProfileOptions } from './profile';
export { inferTask } from './task';
export { overrideOf } from './infer-kind';
export { fitPreprocessing, type FitOptions } from './fit';
export { RowEncoder, encodeRecords, type EncodedRecords } from './encode';
export { stepWidth } from './step-encoders';
export { targetEncoder, decodeRegression } from './target';
export { splitRows, TRAIN, VALIDATION, SKIP } from './split';
export { prepareTable, type PrepareOptions, type PreparedTable, type Matrix } from './prepare';
export { preprocessingToOnnx, PREPROCESSING_OUTPUT } from './onnx-preprocessing';
export {
  loadTrainingData,
  checkUsable,
  tabularOf,
  type TableDatasets,
  type TrainingDataSources,
  type TrainingDataRequest,
  type VersionArtifacts,
} from './training-data';
