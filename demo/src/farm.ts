/**
 * A simulated farm wired to a real collector: the collector with its embedded broker, and per
 * site a simulated uplink plus rigs speaking the real rig protocols, polled by real Agents that
 * publish over MQTT/TCP. Used by the demo and by the end-to-end tests, so what the demo shows is
 * what the tests check.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent, createSimSite, parseConfig as parseAgentConfig, type SimSite, silentLogger } from '@hashwatch/agent';
import { Collector, createLogger, parseConfig as parseCollectorConfig } from '@hashwatch/collector';
import YAML from 'yaml';

export const SITE_NAMES = ['kz-ekibastuz', 'tx-rockdale', 'no-kristiansand', 'py-itaipu', 'ca-quebec'];

export interface FarmOptions {
  dataDir: string;
  /** Preferred ports; a busy one falls back to any free port (0 = any). */
  httpPort: number;
  mqttPort: number;
  sites: number;
  hostsPerSite: number;
  rigsPerHost: number;
  intervalMs: number;
  logLevel: string;
  /** Collector log file; default `<dataDir>/collector.log`. */
  logFile?: string;
}

export interface FarmSite {
  name: string;
  sim: SimSite;
  agents: Agent[];
}

export interface Farm {
  collector: Collector;
  sites: FarmSite[];
  httpPort: number;
  mqttPort: number;
  /** Base URL of the HTTP server: live view at `/`, API under `/api/v1`, `/metrics`. */
  baseUrl: string;
  stop(): Promise<void>;
}

/** The requested port if it is free, else any free port (a second demo must not fail to start). */
export async function freePort(preferred: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        const got = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(got));
      });
    });
  try {
    return await tryListen(preferred);
  } catch {
    return tryListen(0);
  }
}

export async function startFarm(o: FarmOptions): Promise<Farm> {
  fs.mkdirSync(o.dataDir, { recursive: true });
  const mqttPort = await freePort(o.mqttPort);
  const httpPort = await freePort(o.httpPort);
  const logStream = fs.createWriteStream(o.logFile ?? path.join(o.dataDir, 'collector.log'), { flags: 'a' });
  const collectorLog = createLogger(o.logLevel as 'info', logStream);
  const collectorConfig = parseCollectorConfig(
    YAML.stringify({
      data_dir: o.dataDir,
      store: { path: path.join(o.dataDir, 'hashwatch.db') },
      http: { host: '127.0.0.1', port: httpPort },
      // Anonymous agents are allowed only because everything listens on loopback (the broker
      // refuses to start otherwise); a real farm uses `hashwatch-collector add-agent`.
      broker: { mode: 'embedded', embedded: { host: '127.0.0.1', port: mqttPort, allow_anonymous: true } },
      diagnosis_runner: { tick_ms: 1000 },
      live: { summary_interval_ms: Math.max(1000, Math.min(o.intervalMs, 10_000)) },
    }),
    'demo farm',
  );
  const collector = new Collector(collectorConfig, collectorLog);
  await collector.start();

  const sites: FarmSite[] = [];
  for (let si = 0; si < o.sites; si++) {
    const name = SITE_NAMES[si] ?? `site-${si + 1}`;
    const sim = createSimSite({
      rigs: o.hostsPerSite * o.rigsPerHost,
      seed: 1000 * (si + 1),
      // Every eighth rig is a bitaxe on AxeOS; the rest speak the cgminer API.
      apiOf: (i) => (i % 8 === 7 ? 'axeos' : 'cgminer'),
      idOf: (i) => `rig-${String(i + 1).padStart(3, '0')}`,
      metered: true,
    });
    await sim.start();
    const targets = sim.rigTargets();
    const agents: Agent[] = [];
    for (let h = 0; h < o.hostsPerSite; h++) {
      const host = `host-${h + 1}`;
      const config = parseAgentConfig(
        {
          site: name,
          host,
          interval_ms: o.intervalMs,
          data_dir: path.join(o.dataDir, 'agents', name, host),
          broker: { url: `mqtt://127.0.0.1:${mqttPort}`, reconnect_max_ms: 5000 },
          rigs: targets.slice(h * o.rigsPerHost, (h + 1) * o.rigsPerHost),
          probes: sim.probeTargets(),
          poll: { rig_timeout_ms: Math.min(3000, o.intervalMs / 2), probe_timeout_ms: 1000, probe_attempts: 2 },
        },
        `demo agent ${name}/${host}`,
      );
      fs.mkdirSync(config.data_dir, { recursive: true });
      const agent = new Agent({ config, log: silentLogger() });
      agent.start();
      agents.push(agent);
    }
    sites.push({ name, sim, agents });
  }

  let stopped = false;
  return {
    collector,
    sites,
    httpPort,
    mqttPort,
    baseUrl: `http://127.0.0.1:${httpPort}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const site of sites) await Promise.all(site.agents.map((a) => a.stop()));
      for (const site of sites) await site.sim.stop();
      await collector.stop();
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}
