/** The HTTP JSON API and health endpoints. */
export * from './params.js';
export * from './routes.js';
