/**
 * The collector's config: one YAML file, snake_case keys, every key defaulted here (this schema is
 * the reference; README lists the same). Environment variables `HASHWATCH_COLLECTOR_<SECTION>__<KEY>`
 * override the file. Invalid config throws a ConfigError naming each bad key.
 */
import fs from 'node:fs';
import { DiagnosisConfig } from '@hashwatch/diagnosis';
import { applyEnvOverrides, ConfigError, checkConfig } from '@hashwatch/protocol';
import { type Static, Type } from '@sinclair/typebox';
import YAML from 'yaml';
import { BrokerConfig } from './broker/config.js';
import { LOG_LEVELS } from './log.js';

const closed = { additionalProperties: false } as const;
const Ms = (def: number, min = 0) => Type.Integer({ minimum: min, default: def });

export const StoreConfig = Type.Object(
  {
    /**
     * SQLite file (created with its directory). Relative paths are relative to the working directory.
     * The diagnosis memory is saved beside it, as `<path>-diagnosis.json`.
     */
    path: Type.String({ minLength: 1, default: './data/hashwatch.db' }),
    /** How long a write waits on a lock held by another process before failing with HW_ERR_STORE_BUSY. */
    busy_timeout_ms: Ms(5000),
    /** SQLite page cache. */
    cache_size_mib: Type.Integer({ minimum: 1, maximum: 65_536, default: 64 }),
    /** How often the WAL is checkpointed into the database file (SQLite's autocheckpoint is off). */
    checkpoint_interval_ms: Ms(5000, 100),
    /** WAL size (pages) beyond which a checkpoint also truncates the WAL file. */
    checkpoint_pages: Type.Integer({ minimum: 100, default: 10_000 }),
    /**
     * Write report batches on a worker thread with its own connection (the disk sync and the inserts
     * then leave the thread that runs the broker, decoding and the diagnosis). Off: all on one thread.
     */
    writer_thread: Type.Boolean({ default: true }),
  },
  { ...closed, default: {} },
);

export const RetentionConfig = Type.Object(
  {
    /**
     * Raw samples kept this long, then averaged into 1-minute rows; accounting rows past the same
     * age are compacted into one row per run of a state within a clock hour.
     */
    raw_days: Type.Number({ exclusiveMinimum: 0, default: 7 }),
    /** 1-minute rows kept this long, then averaged into 1-hour rows. */
    minute_days: Type.Number({ exclusiveMinimum: 0, default: 90 }),
    /** Everything older is dropped (1-hour rows, reports, accounting, closed incidents). */
    drop_after_days: Type.Number({ exclusiveMinimum: 0, default: 400 }),
    /** How often retention runs. */
    interval_ms: Ms(60_000, 100),
    /**
     * How long one chunk of sample folding should take: a slice of the rigs of one 10-minute
     * bucket of raw samples or of one hour of 1-minute rows, resized after every chunk. Each chunk
     * is one transaction that holds the write lock (commits of ingest wait) and the event loop
     * (acks and the live view wait). Accounting compaction keeps 50 rigs per chunk (~0.2 s here):
     * smaller chunks cost it more in total (retention-pacer.ts).
     */
    chunk_target_ms: Ms(50, 5),
    /**
     * Chunks per run, one turn of the event loop each. At 10 s a farm of N rigs needs about
     * N / 1,600 chunks a minute here (31 for 50,000 rigs, most of them accounting's): 60 keep up
     * with ~95,000 rigs.
     */
    max_chunks_per_run: Type.Integer({ minimum: 1, default: 60 }),
    /** Rows deleted per transaction in the drop phases (past `drop_after_days`, old probe results). */
    chunk_rows: Type.Integer({ minimum: 100, default: 5000 }),
  },
  { ...closed, default: {} },
);

export const IngestConfig = Type.Object(
  {
    /**
     * Longest a report waits for other reports to join its batch while the writer is idle. Reports
     * arriving while a batch is being written go in the next commit as soon as it ends (group
     * commit), so under load batches grow with the commit time, not with this window.
     */
    batch_max_ms: Ms(10, 1),
    /** A batch commits as soon as it holds this many rig samples. */
    batch_max_samples: Type.Integer({ minimum: 1, default: 20_000 }),
    /** A live report stamped further than this from the collector's clock is flagged as skewed. */
    skew_threshold_ms: Ms(120_000),
    /** Recently committed report keys remembered for dedupe without touching the database. */
    dedupe_cache_size: Type.Integer({ minimum: 1, default: 200_000 }),
    /** At most one `resend` command per host per this window. */
    resend_min_interval_ms: Ms(30_000),
    /** At most one `rebirth` command per host per this window. */
    rebirth_min_interval_ms: Ms(60_000),
    /** A rejection of the same reason from the same host is logged at most once per this window. */
    reject_log_interval_ms: Ms(300_000),
  },
  { ...closed, default: {} },
);

export const HttpConfig = Type.Object(
  {
    /** Listen address of the HTTP server (API, /metrics, live view). */
    host: Type.String({ default: '127.0.0.1' }),
    port: Type.Integer({ minimum: 0, maximum: 65_535, default: 8080 }),
    /** Bearer token required on /api/*; empty = no token (keep the server on loopback then). */
    api_token: Type.String({ default: '' }),
    /** Largest request body accepted. */
    max_body_bytes: Type.Integer({ minimum: 0, default: 65_536 }),
  },
  { ...closed, default: {} },
);

export const ApiConfig = Type.Object(
  {
    /** Longest time range one API request may cover. */
    max_span_days: Type.Number({ exclusiveMinimum: 0, default: 400 }),
    /** Most rows one API request may read. */
    max_rows: Type.Integer({ minimum: 1, default: 100_000 }),
  },
  { ...closed, default: {} },
);

export const MetricsConfig = Type.Object(
  {
    /** Serve /metrics on the HTTP server. */
    enabled: Type.Boolean({ default: true }),
    /**
     * Per-rig series (about 20 per rig). Switch off for very large fleets: per-site and per-host
     * aggregates are always on.
     */
    per_rig: Type.Boolean({ default: true }),
  },
  { ...closed, default: {} },
);

export const LiveConfig = Type.Object(
  {
    /** Serve the web page at / and the WebSocket live view at /live. */
    enabled: Type.Boolean({ default: true }),
    /** Bearer token live-view clients must present (header or `?token=`); empty = `http.api_token`. */
    token: Type.String({ default: '' }),
    /** Origins allowed to open the WebSocket; empty = same host only; `*` = any. */
    allowed_origins: Type.Array(Type.String(), { default: [] }),
    /** Most concurrent live-view clients. */
    max_clients: Type.Integer({ minimum: 1, default: 200 }),
    /** How often a per-site summary point (chart data) is taken. */
    summary_interval_ms: Ms(10_000, 1000),
    /** Per-client send buffer past which a slow client is resynced with a fresh snapshot. */
    max_buffered_bytes: Type.Integer({ minimum: 65_536, default: 1_048_576 }),
  },
  { ...closed, default: {} },
);

export const DiagnosisRunnerConfig = Type.Object(
  {
    /** How often silence is checked (agents that stopped reporting become `unknown`). */
    tick_ms: Ms(5_000, 100),
    /**
     * How often the diagnosis memory (baselines, open incidents) is saved, whole, to
     * `<store.path>-diagnosis.json`. Each save makes its JSON on the main thread (~500 B per rig: at
     * 50,000 rigs 25 MB and 0.1–0.15 s, measured here); the file is written off the main thread. A
     * large fleet may save less often, at the price of older memory after a crash; a clean stop
     * always saves.
     */
    persist_ms: Ms(60_000, 1000),
    /**
     * Share of a tick period the collector's event loop was busy at or above which it counts as
     * behind on reading reports: no host is newly judged silent and agent clock offsets are not
     * re-estimated until it is below again (a saturated collector reads reports late, which would
     * look like silence and clock skew). 1 turns the hold off.
     */
    behind_utilization: Type.Number({ minimum: 0.5, maximum: 1, default: 0.9 }),
  },
  { ...closed, default: {} },
);

export const CollectorConfig = Type.Object(
  {
    /** Names this collector in its presence message and logs. */
    collector_id: Type.String({ minLength: 1, maxLength: 128, default: 'collector-1' }),
    /** Directory for the collector's own files (broker credentials default to it). */
    data_dir: Type.String({ minLength: 1, default: './data' }),
    log: Type.Object(
      {
        level: Type.Union(
          LOG_LEVELS.map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
      },
      { ...closed, default: {} },
    ),
    store: StoreConfig,
    retention: RetentionConfig,
    ingest: IngestConfig,
    http: HttpConfig,
    api: ApiConfig,
    broker: BrokerConfig,
    metrics: MetricsConfig,
    live: LiveConfig,
    /** Thresholds and windows of the classifier (see packages/diagnosis/README.md). */
    diagnosis: DiagnosisConfig,
    diagnosis_runner: DiagnosisRunnerConfig,
  },
  closed,
);

export type CollectorConfig = Static<typeof CollectorConfig>;

export const ENV_PREFIX = 'HASHWATCH_COLLECTOR_';

/** Parses and validates config text (YAML), applying env overrides. Throws ConfigError. */
export function parseConfig(
  text: string,
  source: string,
  env: Record<string, string | undefined> = {},
): CollectorConfig {
  let raw: unknown;
  try {
    raw = text.trim() === '' ? {} : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(source, [`not valid YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (raw === null || raw === undefined) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(source, ['the top level must be a mapping']);
  const applied = applyEnvOverrides(raw as Record<string, unknown>, env, ENV_PREFIX);
  const config = checkConfig(
    CollectorConfig,
    raw,
    applied.length > 0 ? `${source} (with environment overrides)` : source,
  );
  const r = config.retention;
  if (!(r.raw_days < r.minute_days && r.minute_days < r.drop_after_days)) {
    throw new ConfigError(source, ['retention: raw_days < minute_days < drop_after_days must hold']);
  }
  return config;
}

/** Loads the config file (absent path = defaults only). Throws ConfigError. */
export function loadConfig(file: string | undefined, env: Record<string, string | undefined>): CollectorConfig {
  if (file === undefined) return parseConfig('', 'defaults', env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    ]);
  }
  return parseConfig(text, file, env);
}
