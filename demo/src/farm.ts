/**
 * A simulated farm wired to a real collector: the collector with its embedded broker, and the
 * agent package's simulated fleet (per site a simulated uplink plus rigs speaking the real rig
 * protocols, polled by real Agents publishing over MQTT/TCP). Used by the demo and by the end-to-end tests, so what the demo shows is
 * what the tests check.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SIM_SITE_NAMES, type SimFleetOptions, type SimFleetSite, startSimFleet } from '@hashwatch/agent';
import { Collector, createLogger, parseConfig as parseCollectorConfig } from '@hashwatch/collector';
import YAML from 'yaml';

export const SITE_NAMES = SIM_SITE_NAMES;

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
  /** Options for every simulated rig (tests shorten how long rigs hash on after losing work). */
  rig?: SimFleetOptions['rig'];
}

export type FarmSite = SimFleetSite;

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

  let fleet: Awaited<ReturnType<typeof startSimFleet>>;
  try {
    fleet = await startSimFleet({
      brokerUrl: `mqtt://127.0.0.1:${mqttPort}`,
      sites: o.sites,
      hostsPerSite: o.hostsPerSite,
      rigsPerHost: o.rigsPerHost,
      intervalMs: o.intervalMs,
      dataDir: o.dataDir,
      ...(o.rig ? { rig: o.rig } : {}),
    });
  } catch (err) {
    await collector.stop();
    throw err;
  }
  const sites = fleet.sites;

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
      await fleet.stop();
      await collector.stop();
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}
