/**
 * The agent as a library: the program's parts for embedding (the demo, the fleet simulator).
 * The installable program is cli.ts.
 */
export { Agent, type AgentDeps, agentVersion } from './agent.js';
export { type AgentConfig, loadConfig, parseConfig } from './config.js';
export { createLogger, silentLogger } from './log.js';
export { pollRound } from './poller.js';
export * from './sim/index.js';
export { SIM_SITE_NAMES, type SimFleet, type SimFleetOptions, type SimFleetSite, startSimFleet } from './simfleet.js';
export type { ProbeTarget, RigTarget } from './targets.js';
