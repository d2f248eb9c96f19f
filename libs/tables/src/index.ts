export * from './cells';
export * from './limits';
export * from './table-source';
export { readTable } from './read-table';
export { profileTable, type ProfileOptions } from './profile';
export { inferTask } from './task';
