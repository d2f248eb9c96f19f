export * from './model-spec-error';
export * from './infer-shapes';
export * from './check-classifier';
export * from './build-model';
export * from './fit-data';
export * from './model-io';
export * from './budget';
