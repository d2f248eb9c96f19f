/**
 * Artifact files of a version. A model trained on a table has two ONNX graphs: model.onnx is what a
 * user downloads (raw columns in, the whole pipeline: preprocessing, network, target units out),
 * network.onnx is what the inference engine runs (features in, as the tfjs model). A model trained
 * on numbers alone has model.onnx only, features in. The .int8 variants follow the same rule.
 */
export const ONNX_ARTIFACT = 'model.onnx';
export const ONNX_INT8_ARTIFACT = 'model.int8.onnx';
export const NETWORK_ONNX_ARTIFACT = 'network.onnx';
export const NETWORK_INT8_ARTIFACT = 'network.int8.onnx';
export const TFJS_ARTIFACT = 'model.json';
/** The fitted preprocessing of a model trained on a table (PreprocessingSpec, libs/tables README). */
export const PREPROCESSING_ARTIFACT = 'preprocessing.json';
