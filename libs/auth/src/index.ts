export * from './api-key';
export * from './api-key-store';
export * from './authenticator';
export * from './first-admin-key';
export * from './request-rate';
