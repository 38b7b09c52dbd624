#!/usr/bin/env node
/**
 * `hashwatch-sim-fleet`: a simulated fleet publishing to an MQTT broker, for trying a deployment
 * without rigs (the docker compose file runs it against mosquitto). Not for production hosts.
 */
import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from './log.js';
import { SIM_SITE_NAMES, startSimFleet } from './simfleet.js';

function int(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}..${max}`);
    return n;
  };
}

interface Options {
  brokerUrl: string;
  username: string;
  passwordFile?: string;
  sites: number;
  hostsPerSite: number;
  rigsPerHost: number;
  intervalMs: number;
  dataDir: string;
}

const program = new Command()
  .name('hashwatch-sim-fleet')
  .description('Simulated rigs and real agents publishing to an MQTT broker (for trying a deployment)')
  .requiredOption('--broker-url <url>', 'broker URL, e.g. mqtt://mosquitto:1883')
  .option('--username <name>', 'MQTT username shared by the simulated agents', '')
  .option('--password-file <file>', 'file holding the MQTT password (first line)')
  .option('--sites <n>', 'simulated sites', int('--sites', 1, SIM_SITE_NAMES.length), 3)
  .option('--hosts-per-site <n>', 'agents per site', int('--hosts-per-site', 1, 50), 2)
  .option('--rigs-per-host <n>', 'rigs per agent', int('--rigs-per-host', 1, 1000), 16)
  .option('--interval-ms <ms>', 'report interval', int('--interval-ms', 1000, 3_600_000), 10_000)
  .option('--data-dir <dir>', 'where the agents spool', './sim-fleet-data')
  .action(async (o: Options) => {
    const log = createLogger('info', { site: '-', host: 'sim-fleet' });
    let password = '';
    if (o.passwordFile) {
      try {
        password = (fs.readFileSync(o.passwordFile, 'utf8').split('\n')[0] ?? '').trim();
      } catch (err) {
        process.stderr.write(`hashwatch-sim-fleet: cannot read --password-file: ${(err as Error).message}\n`);
        process.exit(2);
      }
    }
    const fleet = await startSimFleet({ ...o, password, log });
    log.info(
      { sites: o.sites, hosts: o.sites * o.hostsPerSite, rigs: o.sites * o.hostsPerSite * o.rigsPerHost },
      'Simulated fleet running',
    );
    const stop = () => void fleet.stop().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });

await program.parseAsync(process.argv);
