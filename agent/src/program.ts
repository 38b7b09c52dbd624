/**
 * The `hashwatch-agent` program (entry: cli.ts): `run` (default) polls and publishes until
 * SIGTERM/SIGINT; `check` polls every configured rig and probe once and prints what it saw. An
 * invalid config exits with code 2 and one message naming the key.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '@hashwatch/protocol';
import { Command } from 'commander';
import { Agent, agentVersion, defaultPoll, type PollFn } from './agent.js';
import { type AgentConfig, DEFAULT_CONFIG_PATH, loadConfig } from './config.js';
import { createLogger } from './log.js';
import type { AgentMetricsServer } from './metrics-server.js';

/** Exit codes: 2 = configuration problem (do not restart blindly), 1 = runtime failure. */
export const EXIT_CONFIG = 2;
export const EXIT_FAILURE = 1;

function configOrExit(path: string): AgentConfig {
  try {
    return loadConfig(path);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hashwatch-agent: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/** Reads the TLS files named in `broker.tls`; a missing file is a config error naming the key. */
function tlsOrExit(config: AgentConfig, source: string): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const key of ['ca', 'cert', 'key'] as const) {
    const file = config.broker.tls[key];
    if (file === '') continue;
    try {
      out[key] = readFileSync(file);
    } catch (err) {
      process.stderr.write(
        `hashwatch-agent: Invalid config in ${source}:\n  - broker.tls.${key} cannot be read: ${(err as Error).message}\n`,
      );
      process.exit(EXIT_CONFIG);
    }
  }
  return out;
}

async function run(configPath: string): Promise<void> {
  const config = configOrExit(configPath);
  const tls = tlsOrExit(config, configPath);
  const log = createLogger(config.log.level, { site: config.site, host: config.host });
  const agent = new Agent({ config, log, tls });
  let metrics: AgentMetricsServer | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'Stopping');
    Promise.all([agent.stop(), metrics?.stop()]).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'Stop failed');
        process.exit(EXIT_FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('uncaughtException', (err) => {
    log.fatal(
      { err: err.message, stack: err.stack },
      'Unexpected error; exiting so the service manager restarts the agent',
    );
    process.exit(EXIT_FAILURE);
  });
  agent.start();
  if (config.metrics.port > 0) {
    try {
      // Loaded only when switched on: node:http and the event-loop monitor are not free.
      const { startAgentMetricsServer } = await import('./metrics-server.js');
      metrics = await startAgentMetricsServer({
        host: config.metrics.host,
        port: config.metrics.port,
        getStats: () => agent.metricsStats(),
        onError: (err) => log.warn({ err: (err as Error).message }, 'Metrics scrape failed'),
      });
      log.info({ port: metrics.port, host: config.metrics.host }, 'Serving /metrics');
    } catch (err) {
      // The agent's job is the spool and the reports; a taken metrics port must not stop it.
      log.error(
        { err: (err as Error).message, port: config.metrics.port },
        'Could not serve /metrics; continuing without',
      );
    }
  }
}

function cell(value: unknown): string {
  if (value === undefined || value === null || value === '') return '-';
  return String(value);
}

function formatHashrate(hs: number | undefined): string {
  if (hs === undefined) return '-';
  const units = ['H/s', 'kH/s', 'MH/s', 'GH/s', 'TH/s', 'PH/s', 'EH/s'];
  let v = hs;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

/** Renders rows as aligned columns (first row = header). */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Polls every rig and probe once and prints two tables; exit 1 if anything failed. */
export async function check(config: AgentConfig, poll: PollFn = defaultPoll): Promise<{ text: string; ok: boolean }> {
  const result = await poll(config.rigs, config.probes, {
    concurrency: config.poll.concurrency,
    rigTimeoutMs: config.poll.rig_timeout_ms,
    probeTimeoutMs: config.poll.probe_timeout_ms,
    probeAttempts: config.poll.probe_attempts,
    now: Date.now,
  });
  const rigRows = [['RIG', 'REACHABLE', 'HASHRATE', 'POWER', 'ERROR']];
  for (const s of result.rigs) {
    rigRows.push([
      s.rig,
      s.reachable ? 'yes' : 'no',
      formatHashrate(s.hashrate_hs),
      s.power_w === undefined ? '-' : `${Math.round(s.power_w)} W`,
      s.error ? `${s.error.kind}: ${s.error.message}` : '-',
    ]);
  }
  const probeRows = [['PROBE', 'OK', 'LATENCY', 'LOSS', 'ERROR']];
  for (const p of result.probes) {
    probeRows.push([
      p.target,
      p.ok ? 'yes' : 'no',
      p.latency_ms === undefined ? '-' : `${p.latency_ms.toFixed(1)} ms`,
      `${Math.round(p.loss_ratio * 100)} %`,
      p.error ? `${cell(p.error_class)}: ${p.error}` : '-',
    ]);
  }
  const ok = result.rigs.every((s) => s.reachable) && result.probes.every((p) => p.ok);
  const text = `${table(rigRows)}\n\n${table(probeRows)}\n\nPolled ${result.rigs.length} rig(s) and ${result.probes.length} probe target(s) in ${Math.round(result.durationMs)} ms\n`;
  return { text, ok };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('hashwatch-agent')
    .description('Polls mining rigs and probes the uplink, and publishes reports to the hashwatch collector over MQTT')
    .version(agentVersion())
    .option('--config <file>', 'config file (YAML)', DEFAULT_CONFIG_PATH);
  program
    .command('run', { isDefault: true })
    .description('poll and publish until stopped (SIGTERM/SIGINT stop cleanly)')
    .action(async () => {
      await run(program.opts<{ config: string }>().config);
    });
  program
    .command('check')
    .description('poll every configured rig and probe once and print what was seen')
    .action(async () => {
      const config = configOrExit(program.opts<{ config: string }>().config);
      const { text, ok } = await check(config);
      process.stdout.write(text);
      process.exitCode = ok ? 0 : EXIT_FAILURE;
    });
  return program;
}

/** Parses the command line and runs the command. */
export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
