/**
 * @hashwatch/protocol: the v1 wire contract between agent and collector (see shared DESIGN.md).
 * Both sides import it; nothing else is shared by copy.
 */
export * from './errors.js';
export * from './limits.js';
export * from './schemas.js';
export * from './topics.js';
export * from './validate.js';

export const PROTOCOL_VERSION = 1;
export * from './config.js';
export * from './fixtures.js';
