/** Ingest: validate, dedupe, batch, commit, ack; presence and seq-gap tracking. */
export * from './ingest.js';
export { LruSet } from './lru.js';
export { isStale, type Session } from './presence.js';
export { toRanges } from './ranges.js';
