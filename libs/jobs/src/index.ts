export * from './train.job';
export * from './compress.job';
export * from './infer.job';
export * from './profile-dataset.job';
export * from './predict';
export * from './table-rows';
