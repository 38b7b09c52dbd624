/**
 * The collector as a library: the program's parts for embedding (the demo, benchmarks).
 * The installable program is cli.ts.
 */
export { type CollectorConfig, loadConfig, parseConfig } from './config.js';
export { FleetView } from './fleet/view.js';
export { createLogger } from './log.js';
export { Collector } from './main.js';
