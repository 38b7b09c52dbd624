/**
 * The agent's configuration: one YAML file (snake_case keys), every key defaulted and documented
 * here, environment overrides `HASHWATCH_AGENT_SECTION__KEY=value`, validated once at start-up.
 * An invalid config stops start-up with a message that names the key.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { applyEnvOverrides, ConfigError, checkConfig, NAME_PATTERN } from '@hashwatch/protocol';
import { type Static, Type } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { ProbeTarget, RigTarget } from './targets.js';

export const DEFAULT_CONFIG_PATH = '/etc/hashwatch/agent.yaml';
export const ENV_PREFIX = 'HASHWATCH_AGENT_';

const Name = Type.String({ pattern: NAME_PATTERN });

export const BrokerTlsConfig = Type.Object(
  {
    /** PEM file of the CA that signed the broker's certificate; empty = the system CAs. */
    ca: Type.String({ default: '' }),
    /** PEM client certificate file for mutual TLS; empty = none. */
    cert: Type.String({ default: '' }),
    /** PEM private key file for `cert`; empty = none. */
    key: Type.String({ default: '' }),
    /** Refuse a broker whose certificate does not verify. Turn off only for a lab broker. */
    reject_unauthorized: Type.Boolean({ default: true }),
  },
  { additionalProperties: false, default: {} },
);

export const BrokerConfig = Type.Object(
  {
    /** Broker URL: `mqtt://host:1883` or `mqtts://host:8883` (TLS). */
    url: Type.String({ minLength: 1, default: 'mqtt://127.0.0.1:1883' }),
    /** MQTT username; empty = none (or `{site}.{host}`, the collector's `add-agent` user, when `token` is set). */
    username: Type.String({ default: '' }),
    /** MQTT password; empty = none. Prefer HASHWATCH_AGENT_BROKER__PASSWORD over the file. */
    password: Type.String({ default: '' }),
    /**
     * The password `hashwatch-collector add-agent` printed for this agent; sent as the MQTT password,
     * with `{site}.{host}` as the username unless `username` is set.
     */
    token: Type.String({ default: '' }),
    /** MQTT client id; empty = `hashwatch-agent-{site}-{host}`. Must be stable: the session is kept. */
    client_id: Type.String({ maxLength: 128, default: '' }),
    tls: BrokerTlsConfig,
    /** MQTT keepalive; the broker declares the agent lost after about 1.5 × this. */
    keepalive_s: Type.Integer({ minimum: 5, maximum: 3600, default: 30 }),
    /** MQTT protocol version: 4 (3.1.1, what aedes speaks) or 5. */
    protocol_version: Type.Union([Type.Literal(4), Type.Literal(5)], { default: 4 }),
    /** How long one connection attempt may take before it counts as failed. */
    connect_timeout_ms: Type.Integer({ minimum: 1000, maximum: 120_000, default: 10_000 }),
    /** First reconnect delay after a lost connection; doubles per failure (with jitter). */
    reconnect_min_ms: Type.Integer({ minimum: 10, maximum: 600_000, default: 500 }),
    /** Longest reconnect delay. */
    reconnect_max_ms: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 30_000 }),
  },
  { additionalProperties: false, default: {} },
);

export const SpoolConfig = Type.Object(
  {
    /**
     * Largest spool on disk (stored bytes: payloads are deflated, ~6 kB per 100-rig report); when
     * full, the oldest reports are dropped (counted and logged). 1 GiB holds the 7-day max_age_s
     * of a host with up to ~250 rigs at a 10 s interval (5.9 kB per 100 rigs on the simulated farm).
     */
    max_bytes: Type.Integer({ minimum: 65_536, default: 1024 * 1024 * 1024 }),
    /** Reports older than this are dropped from the spool (counted and logged). Max 365 days. */
    max_age_s: Type.Integer({ minimum: 60, maximum: 365 * 86_400, default: 7 * 86_400 }),
    /** Reports kept in memory when the disk refuses writes (disk full, I/O error). */
    memory_max_reports: Type.Integer({ minimum: 0, maximum: 100_000, default: 360 }),
  },
  { additionalProperties: false, default: {} },
);

export const ReplayConfig = Type.Object(
  {
    /**
     * Backlog reports sent per second after an outage (live reports are never held back; this
     * boot's unsent reports go before older boots' backlog).
     */
    rate_per_s: Type.Number({ minimum: 0.1, maximum: 10_000, default: 20 }),
    /** Backlog reports sent but not yet acknowledged by the collector, at most. */
    max_inflight: Type.Integer({ minimum: 1, maximum: 10_000, default: 50 }),
    /** A report sent but not acknowledged within this time is sent again. */
    ack_timeout_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }),
  },
  { additionalProperties: false, default: {} },
);

export const PollConfig = Type.Object(
  {
    /** Rigs polled at the same time. */
    concurrency: Type.Integer({ minimum: 1, maximum: 1024, default: 32 }),
    /** Deadline of one rig poll. */
    rig_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 5000 }),
    /** Deadline of one probe attempt. */
    probe_timeout_ms: Type.Integer({ minimum: 100, maximum: 120_000, default: 2000 }),
    /** Attempts per probe target per round (loss ratio is measured over them). */
    probe_attempts: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  },
  { additionalProperties: false, default: {} },
);

export const MetricsConfig = Type.Object(
  {
    /** Port of the agent's own Prometheus `/metrics`; 0 = off (the agent's stats also ride in every report). */
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 0 }),
    /** Listen address of `/metrics`; keep loopback unless a farm Prometheus scrapes the host. */
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
  },
  { additionalProperties: false, default: {} },
);

export const LogConfig = Type.Object(
  {
    /** trace | debug | info | warn | error | fatal | silent */
    level: Type.Union(
      [
        Type.Literal('trace'),
        Type.Literal('debug'),
        Type.Literal('info'),
        Type.Literal('warn'),
        Type.Literal('error'),
        Type.Literal('fatal'),
        Type.Literal('silent'),
      ],
      { default: 'info' },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const AgentConfig = Type.Object(
  {
    /** Site (farm) name: `[a-z0-9][a-z0-9_-]{0,62}`; a topic segment and the `site` label. */
    site: Type.String({ pattern: NAME_PATTERN, default: 'default' }),
    /** Host name as the collector sees it; empty = this machine's hostname, lower-cased and cleaned. */
    host: Type.Union([Name, Type.Literal('')], { default: '' }),
    /** Poll round (and report) interval. */
    interval_ms: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 10_000 }),
    /** Where the spool database lives (the systemd unit's StateDirectory). */
    data_dir: Type.String({ minLength: 1, default: '/var/lib/hashwatch-agent' }),
    broker: BrokerConfig,
    spool: SpoolConfig,
    replay: ReplayConfig,
    poll: PollConfig,
    log: LogConfig,
    metrics: MetricsConfig,
    /** Rigs to poll (see agent/src/targets.ts for each key). */
    rigs: Type.Array(RigTarget, { maxItems: 100_000, default: [] }),
    /** Uplink probe targets. */
    probes: Type.Array(ProbeTarget, { maxItems: 64, default: [] }),
  },
  { additionalProperties: false },
);

export type AgentConfig = Static<typeof AgentConfig>;

/** This machine's hostname made into a valid host name (`Farm_Host.local` → `farm_host`). */
export function defaultHostName(raw: string = hostname()): string {
  const cleaned =
    raw
      .toLowerCase()
      .split('.')[0]
      ?.replace(/[^a-z0-9_-]/g, '-') ?? '';
  const trimmed = cleaned.replace(/^[^a-z0-9]+/, '').slice(0, 63);
  return trimmed === '' ? 'agent' : trimmed;
}

/** Cross-field checks no schema can express; returns problems with their key paths. */
function semanticProblems(config: AgentConfig): string[] {
  const problems: string[] = [];
  const rigIds = new Map<string, number>();
  config.rigs.forEach((rig, i) => {
    const first = rigIds.get(rig.id);
    if (first !== undefined) problems.push(`rigs[${i}].id "${rig.id}" repeats rigs[${first}].id`);
    else rigIds.set(rig.id, i);
  });
  const targets = new Map<string, number>();
  config.probes.forEach((probe, i) => {
    const first = targets.get(probe.target);
    if (first !== undefined) problems.push(`probes[${i}].target "${probe.target}" repeats probes[${first}].target`);
    else targets.set(probe.target, i);
  });
  if (config.broker.reconnect_max_ms < config.broker.reconnect_min_ms) {
    problems.push('broker.reconnect_max_ms must be >= broker.reconnect_min_ms');
  }
  if (!/^(mqtts?|wss?|tcp|ssl):\/\//.test(config.broker.url)) {
    problems.push(`broker.url must start with mqtt://, mqtts://, ws:// or wss:// (got "${config.broker.url}")`);
  }
  return problems;
}

/**
 * Validates a parsed config object (defaults filled, env overrides applied first). Throws a
 * ConfigError naming every bad key.
 */
export function parseConfig(raw: unknown, source: string, env: Record<string, string | undefined> = {}): AgentConfig {
  const base = raw === null || raw === undefined ? {} : raw;
  if (typeof base !== 'object' || Array.isArray(base)) {
    throw new ConfigError(source, ['the file must hold a YAML mapping (key: value lines)']);
  }
  const copy = structuredClone(base) as Record<string, unknown>;
  applyEnvOverrides(copy, env, ENV_PREFIX);
  const config = checkConfig(AgentConfig, copy, source);
  const problems = semanticProblems(config);
  if (problems.length > 0) throw new ConfigError(source, problems);
  if (config.host === '') config.host = defaultHostName();
  return config;
}

/** Reads, parses and validates the YAML config file. Throws a ConfigError on any problem. */
export function loadConfig(path: string, env: Record<string, string | undefined> = process.env): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(path, [`not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  return parseConfig(raw, path, env);
}

/**
 * The MQTT username: configured; or, with only a `token`, `{site}.{host}`, the user the collector's
 * `add-agent` creates (its embedded broker binds that user to this site and host); else none.
 */
export function brokerUsername(config: AgentConfig): string | undefined {
  if (config.broker.username !== '') return config.broker.username;
  return config.broker.token !== '' ? `${config.site}.${config.host}` : undefined;
}

/** The MQTT client id: configured, or derived from site and host so the broker keeps the session. */
export function clientIdOf(config: AgentConfig): string {
  return config.broker.client_id !== '' ? config.broker.client_id : `hashwatch-agent-${config.site}-${config.host}`;
}
