/**
 * The simulator: fake rigs as real servers on 127.0.0.1 and a fake uplink, for tests across the
 * repo, the demo and benchmarks. See rig.ts, uplink.ts and farm.ts for the behaviour rules.
 *
 *   const site = createSimSite({ rigs: 10, seed: 7, metered: true });
 *   await site.start();
 *   const round = await pollRound(site.rigTargets(), site.probeTargets(), options);
 *   site.rigs[3].killBoard(1); await site.uplink.cut();
 *   await site.stop();
 */
export { SimDnsServer } from './dns-server.js';
export { createSimSite, SimSite, type SimSiteOptions } from './farm.js';
export { SwitchableListener } from './listener.js';
export { seededRandom } from './random.js';
export { SimRig, type SimRigApi, type SimRigOptions } from './rig.js';
export { type CutMode, SimUplink, type SimUplinkOptions } from './uplink.js';
