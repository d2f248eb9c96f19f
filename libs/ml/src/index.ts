export * from './backend/backend';
