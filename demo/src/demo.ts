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
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { type FarmOptions, type FarmSite, SITE_NAMES, startFarm } from './farm.js';

interface DemoOptions extends FarmOptions {
  storyPeriodS: number;
  once: boolean;
}

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
}

/** One scripted incident: what happens, when in the story period, and how long it lasts. */
interface StoryStep {
  atS: number;
  durationS: number;
  siteIndex: number;
  describe: string;
  inject: (site: FarmSite) => void | Promise<void>;
  heal: (site: FarmSite) => void | Promise<void>;
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
  const farm = await startFarm(o);
  const { sites, httpPort, mqttPort } = farm;
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
    await farm.stop();
    say('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
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
