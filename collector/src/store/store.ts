/**
 * The collector's SQLite store: one file, WAL, one connection owned by this process. Writes are
 * synchronous (better-sqlite3); a batch of reports is one transaction committed with
 * `synchronous=FULL`, because an ack promises the report survives a power cut.
 * Reads for the HTTP API live in `queries.ts`, retention in `retention.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AgentState, Birth, Report, RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { StoreError, toStoreError } from './errors.js';
import { migrate } from './schema.js';

const SAMPLE_COLUMNS = 17;
/** Rows per multi-row sample INSERT (17 columns each, well under SQLite's 32766 parameters). */
const SAMPLE_ROWS_PER_INSERT = 50;

export interface StoreOptions {
  /** SQLite file; its directory is created if missing. `:memory:` for throwaway tests. */
  path: string;
  /** How long a write waits for a lock held by another connection before HW_ERR_STORE_BUSY. */
  busyTimeoutMs: number;
  /** Page cache of the connection. */
  cacheSizeMiB: number;
  /**
   * WAL pages after which `maybeCheckpoint()` runs a PASSIVE checkpoint. SQLite's own
   * autocheckpoint is off: at 1000 pages it fired on nearly every large commit.
   */
  checkpointPages: number;
}

export interface HostRef {
  siteId: number;
  hostId: number;
}

/** A decoded report waiting for the batch commit. */
export interface PendingReport {
  site: string;
  host: string;
  hostId: number;
  report: Report;
  receivedMs: number;
  /** receivedMs - report.ts for live reports; null for historical ones. */
  skewMs: number | null;
  skewed: boolean;
}

export type CommitOutcome = 'stored' | 'duplicate';

export interface CommitResult {
  outcomes: CommitOutcome[];
  samplesWritten: number;
}

/** Figures of one sample as stored; shared with the API. */
export interface SampleRow {
  rig_id: number;
  ts: number;
  reachable: number;
  hashrate_hs: number | null;
  power_w: number | null;
  temp_max_c: number | null;
  fan_min_rpm: number | null;
  boards_ok: number | null;
  boards_total: number | null;
  accepted: number | null;
  rejected: number | null;
  stale: number | null;
  hw_errors: number | null;
  pool_ok: number | null;
  error_kind: string | null;
  flags: string | null;
}

function maxOf(values: Iterable<number>): number | null {
  let out: number | null = null;
  for (const v of values) if (out === null || v > out) out = v;
  return out;
}

function minOf(values: Iterable<number>): number | null {
  let out: number | null = null;
  for (const v of values) if (out === null || v < out) out = v;
  return out;
}

function* sampleTemps(s: RigSample): Iterable<number> {
  for (const t of s.temps ?? []) yield t.temp_c;
  for (const b of s.boards ?? []) if (b.temp_c !== undefined) yield b.temp_c;
}

/** Reduces a rig sample to the stored columns (everything the diagnosis and the API read). */
export function sampleColumns(s: RigSample): Omit<SampleRow, 'rig_id' | 'ts'> {
  const pools = s.pools ?? [];
  const active = pools.find((p) => p.active);
  const flags = [...(s.flags ?? []), ...(s.firmware_errors ?? []).map((e) => `fw:${e.code}`)];
  return {
    reachable: s.reachable ? 1 : 0,
    hashrate_hs: s.hashrate_hs ?? null,
    power_w: s.power_w ?? null,
    temp_max_c: maxOf(sampleTemps(s)),
    fan_min_rpm: minOf((s.fans ?? []).map((f) => f.rpm)),
    boards_ok: s.boards ? s.boards.filter((b) => b.ok).length : null,
    boards_total: s.boards ? s.boards.length : null,
    accepted: s.accepted ?? null,
    rejected: s.rejected ?? null,
    stale: s.stale ?? null,
    hw_errors: s.hw_errors ?? null,
    pool_ok: pools.length === 0 ? null : active?.status === 'alive' ? 1 : 0,
    error_kind: s.error?.kind ?? null,
    flags: flags.length === 0 ? null : flags.join(','),
  };
}

export class Store {
  private readonly options: StoreOptions;
  private conn: Database.Database | undefined;
  private stmts: ReturnType<Store['prepare']> | undefined;
  private readonly siteIds = new Map<string, number>();
  private readonly hostIds = new Map<string, HostRef>();
  private readonly rigIds = new Map<string, number>();
  private readonly hostsWithBirth = new Set<number>();
  /** Latest sample per rig (by ts), kept in memory and flushed to `rigs` by flushLatest(). */
  private readonly latest = new Map<number, { id: number; ts: number }>();
  private readonly latestDirty = new Set<number>();
  private readonly sampleInserts = new Map<number, Database.Statement>();

  constructor(options: StoreOptions) {
    this.options = options;
  }

  /** Opens (creating if needed) and migrates the database. Throws a StoreError. */
  open(): void {
    if (this.conn) return;
    const file = this.options.path;
    try {
      if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      const db = new Database(file, { timeout: this.options.busyTimeoutMs });
      try {
        // A foreign or mangled file fails here (SQLITE_NOTADB) rather than on the first write. No
        // integrity_check at open: it reads the whole file (minutes on a large store); damage deeper
        // in the file surfaces as SQLITE_CORRUPT on use, mapped to HW_ERR_STORE_CORRUPT as well.
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('wal_autocheckpoint = 0');
        db.pragma(`cache_size = ${-Math.round(this.options.cacheSizeMiB * 1024)}`);
        db.pragma('foreign_keys = OFF');
        db.pragma('temp_store = MEMORY');
        try {
          migrate(db);
        } catch (err) {
          if ((err as { code?: string }).code === 'HW_SCHEMA_NEWER') {
            throw new StoreError('HW_ERR_STORE_SCHEMA', `${file}: ${(err as Error).message}`);
          }
          throw err;
        }
      } catch (err) {
        db.close();
        throw err;
      }
      this.conn = db;
      this.stmts = this.prepare(db);
      this.loadCaches();
    } catch (err) {
      throw toStoreError(err, `opening ${file}`);
    }
  }

  /** Flushes the latest-sample pointers, checkpoints and closes. Idempotent. */
  close(): void {
    if (!this.conn) return;
    try {
      this.flushLatest();
      this.conn.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // closing must not fail because the disk is full: the WAL is replayed at the next open
    }
    this.conn.close();
    this.conn = undefined;
    this.sampleInserts.clear();
    this.stmts = undefined;
  }

  get isOpen(): boolean {
    return this.conn !== undefined;
  }

  /** The open connection, for queries and retention in this package. */
  get db(): Database.Database {
    if (!this.conn) throw new StoreError('HW_ERR_STORE_CLOSED', this.options.path);
    return this.conn;
  }

  private get s(): NonNullable<Store['stmts']> {
    if (!this.stmts) throw new StoreError('HW_ERR_STORE_CLOSED', this.options.path);
    return this.stmts;
  }

  private prepare(db: Database.Database) {
    return {
      insertSite: db.prepare('INSERT INTO sites (name, first_seen_ms) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      selectSite: db.prepare<[string], { id: number }>('SELECT id FROM sites WHERE name = ?'),
      insertHost: db.prepare(
        'INSERT INTO hosts (site_id, name, first_seen_ms) VALUES (?, ?, ?) ON CONFLICT (site_id, name) DO NOTHING',
      ),
      selectHost: db.prepare<[number, string], { id: number; boot_id: string | null }>(
        'SELECT id, boot_id FROM hosts WHERE site_id = ? AND name = ?',
      ),
      insertRig: db.prepare(
        'INSERT INTO rigs (host_id, name, first_seen_ms) VALUES (?, ?, ?) ON CONFLICT (host_id, name) DO NOTHING',
      ),
      selectRig: db.prepare<[number, string], { id: number }>('SELECT id FROM rigs WHERE host_id = ? AND name = ?'),
      updateBirth: db.prepare(
        `UPDATE hosts SET boot_id = @boot_id, conn = @conn, birth_ts = @ts, birth_received_ms = @received,
           agent_version = @agent_version, hostname = @hostname, os = @os, arch = @arch, uptime_s = @uptime_s,
           interval_ms = @interval_ms, probes_json = @probes WHERE id = @host_id`,
      ),
      clearInventory: db.prepare('UPDATE rigs SET in_inventory = 0 WHERE host_id = ?'),
      updateRigInventory: db.prepare(
        `UPDATE rigs SET in_inventory = 1, model = @model, api = @api, nominal_hashrate_hs = @nominal_hashrate_hs,
           nominal_power_w = @nominal_power_w, feed = @feed, rack = @rack WHERE id = @id`,
      ),
      upsertSession: db.prepare(
        `INSERT INTO agent_sessions (host_id, boot_id, conn, first_seen_ms, last_seen_ms, status, reason)
         VALUES (@host_id, @boot_id, @conn, @now, @now, @status, @reason)
         ON CONFLICT (host_id, boot_id, conn) DO UPDATE SET last_seen_ms = @now, status = @status, reason = @reason`,
      ),
      insertReport: db.prepare(
        `INSERT INTO reports (host_id, boot_id, seq, ts, received_ms, historical, skew_ms, skewed, rig_count, agent_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host_id, boot_id, seq) DO NOTHING`,
      ),
      insertProbe: db.prepare(
        `INSERT INTO probe_results (host_id, report_id, ts, target, kind, role, ok, attempts, loss_ratio, latency_ms, error_class)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      updateLatest: db.prepare('UPDATE rigs SET last_sample_id = ?, last_sample_ts = ? WHERE id = ?'),
    };
  }

  /** The INSERT of `rows` samples at once, prepared on first use. */
  private sampleInsert(rows: number): Database.Statement {
    let stmt = this.sampleInserts.get(rows);
    if (!stmt) {
      const one = `(${new Array(SAMPLE_COLUMNS).fill('?').join(', ')})`;
      stmt = this.db.prepare(
        `INSERT INTO samples (rig_id, ts, report_id, reachable, hashrate_hs, power_w, temp_max_c, fan_min_rpm,
           boards_ok, boards_total, accepted, rejected, stale, hw_errors, pool_ok, error_kind, flags)
         VALUES ${new Array(rows).fill(one).join(', ')}`,
      );
      this.sampleInserts.set(rows, stmt);
    }
    return stmt;
  }

  private loadCaches(): void {
    const db = this.db;
    for (const r of db.prepare<[], { id: number; name: string }>('SELECT id, name FROM sites').all()) {
      this.siteIds.set(r.name, r.id);
    }
    const hosts = db
      .prepare<[], { id: number; site_id: number; site: string; name: string; boot_id: string | null }>(
        'SELECT h.id, h.site_id, s.name AS site, h.name, h.boot_id FROM hosts h JOIN sites s ON s.id = h.site_id',
      )
      .all();
    for (const h of hosts) {
      this.hostIds.set(`${h.site}/${h.name}`, { siteId: h.site_id, hostId: h.id });
      if (h.boot_id !== null) this.hostsWithBirth.add(h.id);
    }
    let maxKnown = 0;
    const rigs = db
      .prepare<
        [],
        { id: number; host_id: number; name: string; last_sample_id: number | null; last_sample_ts: number | null }
      >('SELECT id, host_id, name, last_sample_id, last_sample_ts FROM rigs')
      .all();
    for (const r of rigs) {
      this.rigIds.set(`${r.host_id}/${r.name}`, r.id);
      if (r.last_sample_id !== null && r.last_sample_ts !== null) {
        this.latest.set(r.id, { id: r.last_sample_id, ts: r.last_sample_ts });
        if (r.last_sample_id > maxKnown) maxKnown = r.last_sample_id;
      }
    }
    // Samples written after the last flush (a crash): a rowid range scan from the last known id.
    const newer = db
      .prepare<[number], { rig_id: number; id: number; ts: number }>(
        'SELECT rig_id, id, MAX(ts) AS ts FROM samples WHERE id > ? GROUP BY rig_id',
      )
      .all(maxKnown);
    for (const r of newer) this.noteLatest(r.rig_id, r.id, r.ts);
  }

  private noteLatest(rigId: number, id: number, ts: number): void {
    const cur = this.latest.get(rigId);
    if (cur === undefined || ts > cur.ts || (ts === cur.ts && id > cur.id)) {
      this.latest.set(rigId, { id, ts });
      this.latestDirty.add(rigId);
    }
  }

  /** The sample row id and ts of a rig's latest sample, if any. */
  latestSample(rigId: number): { id: number; ts: number } | undefined {
    return this.latest.get(rigId);
  }

  /** Writes the in-memory latest-sample pointers to `rigs` (on a timer and at close). */
  flushLatest(): void {
    if (this.latestDirty.size === 0) return;
    const s = this.s;
    const dirty = [...this.latestDirty];
    this.db.transaction(() => {
      for (const rigId of dirty) {
        const l = this.latest.get(rigId);
        if (l) s.updateLatest.run(l.id, l.ts, rigId);
      }
    })();
    this.latestDirty.clear();
  }

  /** Id of a known site, without creating it. */
  findSite(site: string): number | undefined {
    return this.siteIds.get(site);
  }

  private siteId(site: string, nowMs: number): number {
    let id = this.siteIds.get(site);
    if (id === undefined) {
      this.s.insertSite.run(site, nowMs);
      id = (this.s.selectSite.get(site) as { id: number }).id;
      this.siteIds.set(site, id);
    }
    return id;
  }

  /** Returns (creating if needed) the ids of a site and host. Throws a StoreError. */
  ensureHost(site: string, host: string, nowMs: number): HostRef {
    const key = `${site}/${host}`;
    const known = this.hostIds.get(key);
    if (known) return known;
    try {
      return this.db.transaction(() => {
        const siteId = this.siteId(site, nowMs);
        this.s.insertHost.run(siteId, host, nowMs);
        const row = this.s.selectHost.get(siteId, host) as { id: number; boot_id: string | null };
        const ref = { siteId, hostId: row.id };
        this.hostIds.set(key, ref);
        if (row.boot_id !== null) this.hostsWithBirth.add(row.id);
        return ref;
      })();
    } catch (err) {
      // a rolled-back site insert must not stay cached
      this.siteIds.delete(site);
      throw toStoreError(err, `registering host ${key}`);
    }
  }

  /** Ids of a known host, without creating it. */
  findHost(site: string, host: string): HostRef | undefined {
    return this.hostIds.get(`${site}/${host}`);
  }

  /** Whether a birth (the rig inventory) has ever been stored for this host. */
  hasBirth(hostId: number): boolean {
    return this.hostsWithBirth.has(hostId);
  }

  /** Returns (creating if needed) the id of a rig of a known host. Throws a StoreError. */
  ensureRig(hostId: number, rig: string, nowMs: number): number {
    try {
      return this.rigId(hostId, rig, nowMs);
    } catch (err) {
      throw toStoreError(err, `registering rig ${rig}`);
    }
  }

  private rigId(hostId: number, rig: string, nowMs: number): number {
    const key = `${hostId}/${rig}`;
    let id = this.rigIds.get(key);
    if (id === undefined) {
      this.s.insertRig.run(hostId, rig, nowMs);
      id = (this.s.selectRig.get(hostId, rig) as { id: number }).id;
      this.rigIds.set(key, id);
    }
    return id;
  }

  /** Stores a birth: host facts and the rig inventory (rigs missing from it stay, out of inventory). */
  recordBirth(site: string, host: string, birth: Birth, receivedMs: number): HostRef {
    const ref = this.ensureHost(site, host, receivedMs);
    const created: string[] = [];
    try {
      this.db.transaction(() => {
        this.s.updateBirth.run({
          host_id: ref.hostId,
          boot_id: birth.boot_id,
          conn: birth.conn,
          ts: birth.ts,
          received: receivedMs,
          agent_version: birth.agent_version,
          hostname: birth.host.hostname,
          os: birth.host.os,
          arch: birth.host.arch,
          uptime_s: birth.host.uptime_s,
          interval_ms: birth.interval_ms,
          probes: JSON.stringify(birth.probes),
        });
        this.s.clearInventory.run(ref.hostId);
        for (const rig of birth.rigs) {
          if (!this.rigIds.has(`${ref.hostId}/${rig.id}`)) created.push(`${ref.hostId}/${rig.id}`);
          this.s.updateRigInventory.run({
            id: this.rigId(ref.hostId, rig.id, receivedMs),
            model: rig.model,
            api: rig.api,
            nominal_hashrate_hs: rig.nominal_hashrate_hs,
            nominal_power_w: rig.nominal_power_w ?? null,
            feed: rig.feed ?? null,
            rack: rig.rack ?? null,
          });
        }
      })();
    } catch (err) {
      for (const key of created) this.rigIds.delete(key);
      throw toStoreError(err, `storing the birth of ${site}/${host}`);
    }
    this.hostsWithBirth.add(ref.hostId);
    return ref;
  }

  /** Records an agent session's presence (online/offline) as seen by the collector. */
  recordPresence(
    hostId: number,
    state: Pick<AgentState, 'boot_id' | 'conn' | 'status' | 'reason'>,
    nowMs: number,
  ): void {
    try {
      this.s.upsertSession.run({
        host_id: hostId,
        boot_id: state.boot_id,
        conn: state.conn,
        now: nowMs,
        status: state.status,
        reason: state.reason ?? null,
      });
    } catch (err) {
      throw toStoreError(err, 'recording agent presence');
    }
  }

  /**
   * Commits a batch of reports in one transaction. A report already stored (same host, boot_id,
   * seq) is a duplicate and none of its samples are written. Throws a StoreError and stores
   * nothing when the commit fails: the caller must not ack.
   */
  commitReports(items: readonly PendingReport[]): CommitResult {
    const s = this.s;
    const outcomes: CommitOutcome[] = [];
    const latest: Array<[number, number, number]> = [];
    const createdRigs: string[] = [];
    let samplesWritten = 0;
    const run = this.db.transaction(() => {
      for (const item of items) {
        const r = item.report;
        const info = s.insertReport.run(
          item.hostId,
          r.boot_id,
          r.seq,
          r.ts,
          item.receivedMs,
          r.historical ? 1 : 0,
          item.skewMs,
          item.skewed ? 1 : 0,
          r.rigs.length,
          r.agent ? JSON.stringify(r.agent) : null,
        );
        if (info.changes === 0) {
          outcomes.push('duplicate');
          continue;
        }
        outcomes.push('stored');
        const reportId = Number(info.lastInsertRowid);
        const params: Array<number | string | null> = [];
        const rigIdsOfReport: number[] = [];
        for (const sample of r.rigs) {
          const key = `${item.hostId}/${sample.rig}`;
          if (!this.rigIds.has(key)) createdRigs.push(key);
          const rigId = this.rigId(item.hostId, sample.rig, item.receivedMs);
          const c = sampleColumns(sample);
          rigIdsOfReport.push(rigId);
          params.push(
            rigId,
            sample.ts,
            reportId,
            c.reachable,
            c.hashrate_hs,
            c.power_w,
            c.temp_max_c,
            c.fan_min_rpm,
            c.boards_ok,
            c.boards_total,
            c.accepted,
            c.rejected,
            c.stale,
            c.hw_errors,
            c.pool_ok,
            c.error_kind,
            c.flags,
          );
        }
        // Multi-row INSERTs: the per-call cost of better-sqlite3 dominates single-row inserts.
        for (let first = 0; first < rigIdsOfReport.length; first += SAMPLE_ROWS_PER_INSERT) {
          const rows = Math.min(SAMPLE_ROWS_PER_INSERT, rigIdsOfReport.length - first);
          const res = this.sampleInsert(rows).run(
            params.slice(first * SAMPLE_COLUMNS, (first + rows) * SAMPLE_COLUMNS),
          );
          // One statement into a rowid table without concurrent writers: consecutive rowids.
          const lastId = Number(res.lastInsertRowid);
          for (let k = 0; k < rows; k++) {
            const n = first + k;
            latest.push([rigIdsOfReport[n] as number, lastId - rows + 1 + k, (r.rigs[n] as RigSample).ts]);
          }
          samplesWritten += rows;
        }
        for (const p of r.probes) {
          s.insertProbe.run(
            item.hostId,
            reportId,
            p.ts,
            p.target,
            p.kind,
            p.role,
            p.ok ? 1 : 0,
            p.attempts,
            p.loss_ratio,
            p.latency_ms ?? null,
            p.error_class ?? null,
          );
        }
      }
    });
    try {
      run();
    } catch (err) {
      for (const key of createdRigs) this.rigIds.delete(key);
      throw toStoreError(err, `committing a batch of ${items.length} reports`);
    }
    for (const [rigId, id, ts] of latest) this.noteLatest(rigId, id, ts);
    return { outcomes, samplesWritten };
  }

  /** Checkpoints the WAL (PASSIVE: never waits for readers); truncates it past `checkpointPages`. */
  maybeCheckpoint(): void {
    const rows = this.db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
    const row = rows[0];
    // PASSIVE already copied what it could; TRUNCATE only when the WAL file itself got large.
    if (row && row.log > this.options.checkpointPages) this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Probes that the database is open and writable (for /readyz). */
  health(): { ok: boolean; detail: string } {
    if (!this.conn) return { ok: false, detail: 'database is not open' };
    try {
      this.conn.prepare('BEGIN IMMEDIATE').run();
      this.conn.prepare('ROLLBACK').run();
      return { ok: true, detail: this.options.path };
    } catch (err) {
      try {
        if (this.conn.inTransaction) this.conn.prepare('ROLLBACK').run();
      } catch {
        // nothing to roll back
      }
      return { ok: false, detail: toStoreError(err, 'probing the database').message };
    }
  }
}
