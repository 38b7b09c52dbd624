#!/usr/bin/env node
/**
 * The one-command demo: a collector with its embedded broker, plus a simulated farm of three
 * sites whose agents poll simulated rigs over the real rig protocols (cgminer TCP, AxeOS HTTP)
 * and publish over real MQTT. A scripted story repeats so a new user sees the diagnosis work:
 * an uplink cut at one site, a hashboard death at another, a pool outage at the third.
 *
 * The agents here share the collector's process for convenience; they are the same Agent class
 * the `hashwatch-agent` program runs, talking to the broker over TCP like any other agent.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Agent, createSimSite, parseConfig as parseAgentConfig, type SimSite, silentLogger } from '@hashwatch/agent';
import { Collector, createLogger, parseConfig as parseCollectorConfig } from '@hashwatch/collector';
import { Command, InvalidArgumentError } from 'commander';
import YAML from 'yaml';

interface DemoOptions {
  dataDir: string;
  httpPort: number;
  mqttPort: number;
  sites: number;
  hostsPerSite: number;
  rigsPerHost: number;
  intervalMs: number;
  storyPeriodS: number;
  logLevel: string;
  once: boolean;
}

const SITE_NAMES = ['kz-ekibastuz', 'tx-rockdale', 'no-kristiansand', 'py-itaipu', 'ca-quebec'];

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
}

/** The requested port if it is free, else any free port (a second demo must not fail to start). */
async function freePort(preferred: number): Promise<number> {
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

interface DemoSite {
  name: string;
  sim: SimSite;
  agents: Agent[];
}

/** One scripted incident: what happens, when in the story period, and how long it lasts. */
interface StoryStep {
  atS: number;
  durationS: number;
  siteIndex: number;
  describe: string;
  inject: (site: DemoSite) => void | Promise<void>;
  heal: (site: DemoSite) => void | Promise<void>;
}

const STORY: StoryStep[] = [
  {
    atS: 30,
    durationS: 75,
    siteIndex: 0,
    describe: 'uplink cut: internet and pool unreachable from the whole site (expect connectivity_loss)',
    inject: (s) => s.sim.uplink.cut('hang'),
    heal: (s) => s.sim.uplink.restore(),
  },
  {
    atS: 45,
    durationS: 120,
    siteIndex: 1,
    describe: 'hashboards 0 and 1 die on one rig (expect hardware_fault on that rig only)',
    inject: (s) => {
      s.sim.rigs[2]?.killBoard(0);
      s.sim.rigs[2]?.killBoard(1);
    },
    heal: async (s) => {
      await s.sim.rigs[2]?.heal();
    },
  },
  {
    atS: 130,
    durationS: 60,
    siteIndex: 2,
    describe: 'pool outage: internet fine, only the pool fails (expect pool_outage)',
    inject: (s) => s.sim.uplink.poolOutage('refuse'),
    heal: (s) => s.sim.uplink.restore(),
  },
];

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
}

async function main(o: DemoOptions): Promise<void> {
  fs.mkdirSync(o.dataDir, { recursive: true });
  const mqttPort = await freePort(o.mqttPort);
  const httpPort = await freePort(o.httpPort);
  const collectorLog = createLogger(o.logLevel as 'info', pino(path.join(o.dataDir, 'collector.log')));
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
    'demo',
  );
  const collector = new Collector(collectorConfig, collectorLog);
  await collector.start();

  const sites: DemoSite[] = [];
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

  const base = `http://127.0.0.1:${httpPort}`;
  const rigs = o.sites * o.hostsPerSite * o.rigsPerHost;
  process.stdout.write(
    [
      '',
      `hashwatch demo: ${o.sites} sites, ${o.sites * o.hostsPerSite} hosts, ${rigs} simulated rigs, reporting every ${o.intervalMs / 1000} s`,
      '',
      `  live view   ${base}/`,
      `  metrics     ${base}/metrics`,
      `  API         ${base}/api/v1/sites   (also /api/v1/rigs, /api/v1/incidents, /api/v1/attribution)`,
      `  MQTT        mqtt://127.0.0.1:${mqttPort}   (embedded broker, anonymous on loopback for the demo)`,
      `  data        ${path.resolve(o.dataDir)}   (SQLite store, agent spools, collector.log)`,
      '',
      `The story repeats every ${o.storyPeriodS} s:`,
      ...STORY.filter((s) => s.siteIndex < sites.length).map(
        (s) => `  +${String(s.atS).padStart(3)} s  ${sites[s.siteIndex]?.name}: ${s.describe}, for ${s.durationS} s`,
      ),
      '',
      'Press Ctrl-C to stop.',
      '',
    ].join('\n'),
  );

  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void | Promise<void>) => {
    const t = setTimeout(() => {
      timers.delete(t);
      Promise.resolve(fn()).catch((err: Error) => say(`story step failed: ${err.message}`));
    }, ms);
    timers.add(t);
  };
  const runStory = () => {
    for (const step of STORY) {
      const site = sites[step.siteIndex];
      if (!site) continue;
      later(step.atS * 1000, async () => {
        say(`${site.name}: ${step.describe}`);
        await step.inject(site);
      });
      later((step.atS + step.durationS) * 1000, async () => {
        say(`${site.name}: healed`);
        await step.heal(site);
      });
    }
  };
  runStory();
  const storyTimer = o.once ? undefined : setInterval(runStory, o.storyPeriodS * 1000);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping agents, simulated rigs and the collector`);
    clearInterval(storyTimer);
    for (const t of timers) clearTimeout(t);
    for (const site of sites) await Promise.all(site.agents.map((a) => a.stop()));
    for (const site of sites) await site.sim.stop();
    await collector.stop();
    say('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

function pino(file: string): NodeJS.WritableStream {
  return fs.createWriteStream(file, { flags: 'a' });
}

const program = new Command()
  .name('hashwatch-demo')
  .description('Collector with embedded broker plus a simulated farm, with a repeating incident story')
  .option('--data-dir <dir>', 'where the store, spools and logs go', '.demo-data')
  .option(
    '--http-port <port>',
    'HTTP port of the live view, API and /metrics (falls back to a free one)',
    int('--http-port', 0, 65535),
    8080,
  )
  .option(
    '--mqtt-port <port>',
    'MQTT port of the embedded broker (falls back to a free one)',
    int('--mqtt-port', 0, 65535),
    1883,
  )
  .option('--sites <n>', 'simulated sites', int('--sites', 1, SITE_NAMES.length), 3)
  .option('--hosts-per-site <n>', 'agents per site', int('--hosts-per-site', 1, 20), 2)
  .option('--rigs-per-host <n>', 'simulated rigs per agent', int('--rigs-per-host', 1, 500), 16)
  .option('--interval-ms <ms>', 'agent report interval', int('--interval-ms', 1000, 60_000), 5000)
  .option('--story-period-s <s>', 'the scripted story repeats this often', int('--story-period-s', 60, 86_400), 240)
  .option('--log-level <level>', 'collector log level (logs go to <data-dir>/collector.log)', 'info')
  .option('--once', 'play the story once instead of repeating it', false)
  .action(async (opts: DemoOptions) => {
    try {
      await main(opts);
    } catch (err) {
      process.stderr.write(`hashwatch-demo: ${(err as Error).message}\n`);
      process.exit(1);
    }
  });

await program.parseAsync(process.argv);
