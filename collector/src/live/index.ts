/** The live view: WebSocket stream of the FleetView and the static page that reads it. */
export { checkUpgrade, originAllowed, type UpgradePolicy, type UpgradeVerdict } from './auth.js';
export { Ring } from './history.js';
export { projectHost, projectIncident, projectRig, projectSites, summarize, uplinkByRole } from './project.js';
export * from './protocol.js';
export { LIVE_DEFAULTS, type LiveOptions, LiveServer, type LiveStats } from './server.js';
export { createStaticHandler, DEFAULT_WEB_DIR, type StaticHandler, type StaticOptions } from './static.js';
