/**
 * The preprocessing as an ONNX graph is built in @tq/ml (beside the network exporter, so that the
 * whole-pipeline export needs no import of this library); re-exported here where it belongs by topic.
 */
export { preprocessingToOnnx, PREPROCESSING_OUTPUT } from '@tq/ml';
