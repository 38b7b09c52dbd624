/**
 * The database schema as an ordered list of migrations. `PRAGMA user_version` records how many
 * have run; each runs in its own transaction, so a crash mid-upgrade leaves the previous version.
 * Never edit a released migration: append a new one.
 *
 * Layout (see README "Storage"): names live once in dictionary tables (sites, hosts, rigs) and
 * everything else refers to them by integer id. `samples` is a rowid table written in arrival
 * order (appends are cheap); its only index is on (10-minute bucket, rig, ts): the bucket keeps
 * the index's hot part small, so ingest stays fast as the table grows, and "one rig over a range"
 * is one seek per bucket. Idempotency comes from `reports` (unique on host, boot_id, seq): a
 * duplicate report's samples are never written, which also keeps (rig, ts) unique.
 */
import type BetterSqlite3 from 'better-sqlite3';

/** Width of a samples index bucket; queries must use the same expression (`ts / 600000`). */
export const SAMPLE_BUCKET_MS = 600_000;

type Migration = (db: BetterSqlite3.Database) => void;

export const MIGRATIONS: readonly Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE sites (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        first_seen_ms INTEGER NOT NULL
      );
      CREATE TABLE hosts (
        id INTEGER PRIMARY KEY,
        site_id INTEGER NOT NULL REFERENCES sites(id),
        name TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        -- from the latest birth; NULL until one arrives
        boot_id TEXT,
        conn INTEGER,
        birth_ts INTEGER,
        birth_received_ms INTEGER,
        agent_version TEXT,
        hostname TEXT,
        os TEXT,
        arch TEXT,
        uptime_s INTEGER,
        interval_ms INTEGER,
        probes_json TEXT,
        UNIQUE (site_id, name)
      );
      CREATE TABLE rigs (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        name TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        -- 1 while the rig is in the host's latest birth inventory
        in_inventory INTEGER NOT NULL DEFAULT 0,
        model TEXT,
        api TEXT,
        nominal_hashrate_hs REAL,
        nominal_power_w REAL,
        feed TEXT,
        rack TEXT,
        -- latest sample (by ts); flushed from memory periodically, see Store.flushLatest
        last_sample_id INTEGER,
        last_sample_ts INTEGER,
        UNIQUE (host_id, name)
      );
      CREATE TABLE agent_sessions (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL REFERENCES hosts(id),
        boot_id TEXT NOT NULL,
        conn INTEGER NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        UNIQUE (host_id, boot_id, conn)
      );
      CREATE TABLE reports (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL,
        boot_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        historical INTEGER NOT NULL,
        -- received_ms - ts for live reports, NULL for historical ones
        skew_ms INTEGER,
        skewed INTEGER NOT NULL DEFAULT 0,
        rig_count INTEGER NOT NULL,
        agent_json TEXT,
        UNIQUE (host_id, boot_id, seq)
      );
      CREATE INDEX reports_host_ts ON reports (host_id, ts);
      CREATE INDEX reports_ts ON reports (ts);
      CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        rig_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        report_id INTEGER NOT NULL,
        reachable INTEGER NOT NULL,
        hashrate_hs REAL,
        power_w REAL,
        temp_max_c REAL,
        fan_min_rpm REAL,
        boards_ok INTEGER,
        boards_total INTEGER,
        accepted INTEGER,
        rejected INTEGER,
        stale INTEGER,
        hw_errors INTEGER,
        -- 1 when the active pool is alive, 0 when not, NULL when the rig reports no pools
        pool_ok INTEGER,
        error_kind TEXT,
        -- comma-joined sample flags and firmware error codes, NULL when none
        flags TEXT
      );
      CREATE INDEX samples_bucket_rig ON samples (ts / 600000, rig_id, ts);
      -- downsampled tiers hold sums so late data merges exactly (avg = sum / n)
      CREATE TABLE samples_1m (
        rig_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        n INTEGER NOT NULL,
        reachable_n INTEGER NOT NULL,
        hashrate_sum_hs REAL, hashrate_n INTEGER NOT NULL,
        power_sum_w REAL, power_n INTEGER NOT NULL,
        temp_max_c REAL,
        fan_min_rpm REAL,
        PRIMARY KEY (rig_id, ts)
      ) WITHOUT ROWID;
      CREATE TABLE samples_1h (
        rig_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        n INTEGER NOT NULL,
        reachable_n INTEGER NOT NULL,
        hashrate_sum_hs REAL, hashrate_n INTEGER NOT NULL,
        power_sum_w REAL, power_n INTEGER NOT NULL,
        temp_max_c REAL,
        fan_min_rpm REAL,
        PRIMARY KEY (rig_id, ts)
      ) WITHOUT ROWID;
      CREATE INDEX samples_1m_ts ON samples_1m (ts);
      CREATE INDEX samples_1h_ts ON samples_1h (ts);
      CREATE TABLE probe_results (
        id INTEGER PRIMARY KEY,
        host_id INTEGER NOT NULL,
        report_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        target TEXT NOT NULL,
        kind TEXT NOT NULL,
        role TEXT NOT NULL,
        ok INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        loss_ratio REAL NOT NULL,
        latency_ms REAL,
        error_class TEXT
      );
      CREATE INDEX probe_results_host_ts ON probe_results (host_id, ts);
      CREATE TABLE states (
        scope TEXT NOT NULL CHECK (scope IN ('rig', 'host', 'site')),
        scope_id INTEGER NOT NULL,
        state TEXT NOT NULL,
        since_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        evidence_json TEXT,
        PRIMARY KEY (scope, scope_id)
      ) WITHOUT ROWID;
      CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        scope TEXT NOT NULL CHECK (scope IN ('rig', 'host', 'site')),
        scope_id INTEGER NOT NULL,
        site_id INTEGER NOT NULL,
        cause TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER,
        rigs_affected INTEGER NOT NULL DEFAULT 0,
        deficit_hashes REAL NOT NULL DEFAULT 0,
        energy_j REAL NOT NULL DEFAULT 0,
        evidence_json TEXT
      );
      CREATE INDEX incidents_start ON incidents (start_ms);
      CREATE INDEX incidents_open ON incidents (end_ms) WHERE end_ms IS NULL;
      -- filled by the diagnosis: one row per rig per interval, so attribution over any window
      -- is SUM(deficit_hashes) GROUP BY cause
      CREATE TABLE accounting (
        rig_id INTEGER NOT NULL,
        site_id INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        state TEXT NOT NULL,
        cause TEXT NOT NULL,
        expected_hs REAL NOT NULL,
        actual_hs REAL NOT NULL,
        deficit_hashes REAL NOT NULL,
        PRIMARY KEY (rig_id, ts)
      ) WITHOUT ROWID;
      CREATE INDEX accounting_site_ts ON accounting (site_id, ts);
      CREATE INDEX accounting_ts ON accounting (ts);
    `);
  },
  // 2: the diagnosis package names incidents by a stable string key and reports energy per
  // interval; its memory (baselines, open incidents) is persisted across restarts.
  (db) => {
    db.exec(`
      ALTER TABLE incidents ADD COLUMN key TEXT;
      CREATE UNIQUE INDEX incidents_key ON incidents (key);
      ALTER TABLE accounting ADD COLUMN energy_j REAL;
      CREATE TABLE diagnosis_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        saved_ms INTEGER NOT NULL,
        state_json TEXT NOT NULL
      );
    `);
  },
  // 3: accounting past raw_days is compacted into one row per run of a state within a clock hour
  // (see accounting.ts); `folded` marks those rows, `retention_marks` where the compaction stands.
  (db) => {
    db.exec(`
      ALTER TABLE accounting ADD COLUMN folded INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE retention_marks (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
  },
];

/** Runs the migrations the file has not seen yet. Returns the resulting version. */
export function migrate(db: BetterSqlite3.Database): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw Object.assign(new Error(`schema version ${current}, this collector knows up to ${MIGRATIONS.length}`), {
      code: 'HW_SCHEMA_NEWER',
    });
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    const step = MIGRATIONS[v] as Migration;
    db.transaction(() => {
      step(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
