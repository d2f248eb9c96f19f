export * from './api-key';
export * from './api-key-store';
export * from './authenticator';
export * from './first-admin-key';
export * from './audit-log';
export * from './request-rate';
