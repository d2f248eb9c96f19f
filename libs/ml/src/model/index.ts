export * from './model-spec-error';
export * from './infer-shapes';
export * from './build-model';
export * from './fit-data';
export * from './model-io';
export * from './starting-model';
export * from './model-artifacts';
export * from './train-result';
