/**
 * A simulated fleet: per site a simulated uplink and rigs speaking the real rig protocols, polled
 * by real Agents that publish to any MQTT broker. The demo runs it beside an embedded collector;
 * the docker deployment runs it against mosquitto (`hashwatch-sim-fleet`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { Agent } from './agent.js';
import { parseConfig } from './config.js';
import type { Logger } from './log.js';
import { silentLogger } from './log.js';
import { createSimSite, type SimRigOptions, type SimSite } from './sim/index.js';

export const SIM_SITE_NAMES = ['kz-ekibastuz', 'tx-rockdale', 'no-kristiansand', 'py-itaipu', 'ca-quebec'];

export interface SimFleetOptions {
  brokerUrl: string;
  username?: string;
  password?: string;
  sites: number;
  hostsPerSite: number;
  rigsPerHost: number;
  intervalMs: number;
  /** Agent spools go under `<dataDir>/agents/<site>/<host>`. */
  dataDir: string;
  log?: Logger;
  /** Options for every simulated rig (e.g. a short `workDrainMs` in tests). */
  rig?: Partial<Omit<SimRigOptions, 'id' | 'api' | 'seed' | 'uplink'>>;
}

export interface SimFleetSite {
  name: string;
  sim: SimSite;
  agents: Agent[];
}

export interface SimFleet {
  sites: SimFleetSite[];
  stop(): Promise<void>;
}

export async function startSimFleet(o: SimFleetOptions): Promise<SimFleet> {
  const sites: SimFleetSite[] = [];
  const stop = async () => {
    for (const site of sites) await Promise.all(site.agents.map((a) => a.stop()));
    for (const site of sites) await site.sim.stop();
  };
  try {
    for (let si = 0; si < o.sites; si++) {
      const name = SIM_SITE_NAMES[si] ?? `site-${si + 1}`;
      const sim = createSimSite({
        rigs: o.hostsPerSite * o.rigsPerHost,
        seed: 1000 * (si + 1),
        // Every eighth rig is a bitaxe on AxeOS; the rest speak the cgminer API.
        apiOf: (i) => (i % 8 === 7 ? 'axeos' : 'cgminer'),
        idOf: (i) => `rig-${String(i + 1).padStart(3, '0')}`,
        metered: true,
        ...(o.rig ? { rig: o.rig } : {}),
      });
      await sim.start();
      const site: SimFleetSite = { name, sim, agents: [] };
      sites.push(site);
      const targets = sim.rigTargets();
      for (let h = 0; h < o.hostsPerSite; h++) {
        const host = `host-${h + 1}`;
        const config = parseConfig(
          {
            site: name,
            host,
            interval_ms: o.intervalMs,
            data_dir: path.join(o.dataDir, 'agents', name, host),
            broker: {
              url: o.brokerUrl,
              username: o.username ?? '',
              password: o.password ?? '',
              // One user speaks for every simulated host: client ids must still differ.
              client_id: `hashwatch-sim-${name}-${host}`,
              reconnect_max_ms: 5000,
            },
            rigs: targets.slice(h * o.rigsPerHost, (h + 1) * o.rigsPerHost),
            probes: sim.probeTargets(),
            poll: { rig_timeout_ms: Math.min(3000, o.intervalMs / 2), probe_timeout_ms: 1000, probe_attempts: 2 },
          },
          `simulated agent ${name}/${host}`,
        );
        fs.mkdirSync(config.data_dir, { recursive: true });
        const agent = new Agent({ config, log: o.log?.child({ agent: `${name}/${host}` }) ?? silentLogger() });
        agent.start();
        site.agents.push(agent);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { sites, stop };
}
