#!/usr/bin/env -S node --max-semi-space-size=64
/**
 * `hashwatch-collector`: `run` (default) starts the collector; `add-agent <site> <host>` issues
 * broker credentials and prints the agent's config snippet; `remove-agent <site> <host>` revokes
 * them. Exit codes: 0 ok, 1 runtime failure, 2 invalid config or arguments (or no such agent).
 * SIGHUP makes a running collector re-read its credentials file.
 *
 * The shebang gives V8 a 64 MB semi-space (young generation) instead of 16 MB. At full ingest the
 * reports waiting for their commit survive each scavenge and are copied again and again; with the
 * larger space most die first. 100-rig ingest: GC 2.3 s → 0.9 s per 10 s, 60k → 76k samples/s
 * (BENCHMARKS.md, finding 20). `env -S` is in coreutils 8.30+, i.e. every Debian and Ubuntu that
 * runs Node 20; the Docker image passes the same flag.
 */
import { createRequire } from 'node:module';
import { ConfigError } from '@hashwatch/protocol';
import { Command } from 'commander';
import { addAgent, credentialsPath, readCredentials, removeAgent } from './broker/index.js';
import { loadConfig } from './config.js';
import { createLogger } from './log.js';
import { Collector } from './main.js';

const require = createRequire(import.meta.url);
const { version } = require('../package.json') as { version: string };

function configOrExit(file: string | undefined) {
  try {
    return loadConfig(file, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** The young-generation flag of the shebang, if node got it (on its command line or in NODE_OPTIONS). */
function hasSemiSpaceFlag(): boolean {
  const flag = '--max-semi-space-size';
  return process.execArgv.some((a) => a.startsWith(flag)) || (process.env['NODE_OPTIONS'] ?? '').includes(flag);
}

async function run(opts: { config?: string }): Promise<void> {
  const config = configOrExit(opts.config);
  const log = createLogger(config.log.level);
  if (!hasSemiSpaceFlag()) {
    log.warn(
      { flag: '--max-semi-space-size=64' },
      'Node runs with its default young generation: at full ingest the collector spends over twice as long in garbage collection. Start it as `hashwatch-collector` (its shebang passes the flag) or pass the flag to node',
    );
  }
  const collector = new Collector(config, log);
  try {
    await collector.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message, code: (err as { code?: string }).code }, 'Collector failed to start');
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'Stopping');
    collector.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'Unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Without a handler SIGHUP ends a Node process: the signal the docs and log give for a reload.
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'Reloading the credentials file');
    collector.reload().catch((err: Error) => log.error({ err: err.message }, 'Reload failed'));
  });
}

const program = new Command('hashwatch-collector')
  .description('hashwatch collector: MQTT ingest, SQLite store, diagnosis, metrics and HTTP API')
  .version(version)
  .option('-c, --config <file>', 'YAML config file (defaults apply to every missing key)');

program
  .command('run', { isDefault: true })
  .description('run the collector (default)')
  .option('-c, --config <file>', 'YAML config file')
  .action(async (opts: { config?: string }) => {
    await run({ config: opts.config ?? program.opts<{ config?: string }>().config });
  });

program
  .command('add-agent <site> <host>')
  .description('issue broker credentials for an agent and print its config snippet')
  .option('-c, --config <file>', 'YAML config file')
  .option('--broker-url <url>', 'broker URL the agent should use', undefined)
  .action(async (site: string, host: string, opts: { config?: string; brokerUrl?: string }) => {
    const config = configOrExit(opts.config ?? program.opts<{ config?: string }>().config);
    try {
      const file = credentialsPath(config.broker, config.data_dir);
      const result = await addAgent(file, site, host, opts.brokerUrl ? { brokerUrl: opts.brokerUrl } : {});
      process.stdout.write(`# credentials stored in ${file}; put this in the agent's config:\n${result.snippet}`);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(2);
    }
  });

program
  .command('remove-agent <site> <host>')
  .description("revoke an agent's broker credentials (a running collector drops its session when it rereads the file)")
  .option('-c, --config <file>', 'YAML config file')
  .action(async (site: string, host: string, opts: { config?: string }) => {
    const config = configOrExit(opts.config ?? program.opts<{ config?: string }>().config);
    try {
      const file = credentialsPath(config.broker, config.data_dir);
      const entries = (await readCredentials(file)).agents.filter((a) => a.site === site && a.host === host);
      if (entries.length === 0) {
        process.stderr.write(`No agent ${site}/${host} in ${file}: nothing removed\n`);
        process.exit(2);
      }
      for (const e of entries) await removeAgent(file, e.username);
      const watched = config.broker.embedded.watch_credentials;
      process.stdout.write(
        `Removed agent ${site}/${host} (username ${entries.map((e) => e.username).join(', ')}) from ${file}. ` +
          `A running collector drops its session ${watched ? 'when it sees the file change' : 'on SIGHUP (watch_credentials is off)'}.\n`,
      );
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      process.exit(2);
    }
  });

await program.parseAsync(process.argv);
