export { exportOnnx, linearLayers, ONNX_INPUT, ONNX_OUTPUT, type ExportOnnxOptions } from './export-onnx';
export { exportPipelineOnnx } from './pipeline-onnx';
export { preprocessingToOnnx, PREPROCESSING_OUTPUT } from './preprocessing-onnx';
export { UnsupportedLayerError } from './onnx-activations';
export { DEFAULT_INT8_SCHEME, type Int8Scheme } from './onnx-int8';
export { decodeModel, STRING_ELEM_TYPE } from './onnx-proto';
export { attr, floatValueInfo, OnnxGraph } from './onnx-graph';
