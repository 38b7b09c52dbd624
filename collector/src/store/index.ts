/** The collector's SQLite store: schema, batch writes, retention, and the API's read queries. */
export * from './diagnosis.js';
export * from './errors.js';
export * from './queries.js';
export * from './retention.js';
export { MIGRATIONS, migrate, SAMPLE_BUCKET_MS } from './schema.js';
export * from './store.js';
