/**
 * The collector's SQLite store: one file, WAL, owned by this process. The main thread's connection
 * holds everything but report batches, which `commit` writes on the writer thread's own connection
 * (`writer-thread.ts`; the transaction itself is `report-writer.ts`). A batch of reports is one
 * transaction committed with `synchronous=FULL`, because an ack promises the report survives a
 * power cut. Reads for the HTTP API live in `queries.ts`, retention in `retention.ts`.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AgentState, Birth, Report, RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { StoreError, toStoreError } from './errors.js';
import { writeLatest } from './latest.js';
import {
  type CommitOutcome,
  ReportWriter,
  SAMPLE_NUMBERS,
  type WriteResult,
  type WriterItem,
} from './report-writer.js';
import { migrate } from './schema.js';
import { type CheckpointResult, checkpointWal } from './wal.js';
import { WriterThread } from './writer-thread.js';

export type { CommitOutcome } from './report-writer.js';

export interface StoreOptions {
  /** SQLite file; its directory is created if missing. `:memory:` for throwaway tests. */
  path: string;
  /** How long a write waits for a lock held by another connection before HW_ERR_STORE_BUSY. */
  busyTimeoutMs: number;
  /** Page cache of the connection. */
  cacheSizeMiB: number;
  /** WAL pages past which a checkpoint (`checkpoint()`) also truncates the WAL file. */
  checkpointPages: number;
  /**
   * Commit report batches (`commit`) on a worker thread with its own connection, so the disk wait
   * and the inserts leave the main thread. Ignored for `:memory:` (a second connection would see
   * another database).
   */
  writerThread?: boolean;
  /** Hears of a writer thread that failed (its batches fail; the next batch starts a new thread). */
  onWriterFailure?: (err: StoreError) => void;
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

/** Writes a sample's SAMPLE_NUMBERS stored numbers at `out[at…]` (NaN = NULL), allocating nothing. */
function writeSampleNumbers(s: RigSample, out: Float64Array, at: number): void {
  let tempMax = Number.NaN;
  if (s.temps) for (const t of s.temps) tempMax = larger(tempMax, t.temp_c);
  let boardsOk = 0;
  if (s.boards) {
    for (const b of s.boards) {
      if (b.temp_c !== undefined) tempMax = larger(tempMax, b.temp_c);
      if (b.ok) boardsOk++;
    }
  }
  let fanMin = Number.NaN;
  if (s.fans) for (const f of s.fans) if (Number.isNaN(fanMin) || f.rpm < fanMin) fanMin = f.rpm;
  let poolOk = Number.NaN;
  if (s.pools && s.pools.length > 0) {
    poolOk = 0;
    for (const pool of s.pools) {
      if (pool.active) {
        poolOk = pool.status === 'alive' ? 1 : 0;
        break;
      }
    }
  }
  out[at] = s.ts;
  out[at + 1] = s.reachable ? 1 : 0;
  out[at + 2] = s.hashrate_hs ?? Number.NaN;
  out[at + 3] = s.power_w ?? Number.NaN;
  out[at + 4] = tempMax;
  out[at + 5] = fanMin;
  out[at + 6] = s.boards ? boardsOk : Number.NaN;
  out[at + 7] = s.boards ? s.boards.length : Number.NaN;
  out[at + 8] = s.accepted ?? Number.NaN;
  out[at + 9] = s.rejected ?? Number.NaN;
  out[at + 10] = s.stale ?? Number.NaN;
  out[at + 11] = s.hw_errors ?? Number.NaN;
  out[at + 12] = poolOk;
}

function larger(max: number, v: number): number {
  return Number.isNaN(max) || v > max ? v : max;
}

/** The stored `flags` column: the agent's flags and the firmware's error codes, or null. */
function sampleFlags(s: RigSample): string | null {
  if (!s.flags?.length && !s.firmware_errors?.length) return null;
  return [...(s.flags ?? []), ...(s.firmware_errors ?? []).map((e) => `fw:${e.code}`)].join(',');
}

/** Reduces a rig sample to the stored columns (everything the diagnosis and the API read). */
export function sampleColumns(s: RigSample): Omit<SampleRow, 'rig_id' | 'ts'> {
  const n = new Float64Array(SAMPLE_NUMBERS);
  writeSampleNumbers(s, n, 0);
  const v = (k: number): number | null => (Number.isNaN(n[k]) ? null : (n[k] as number));
  return {
    reachable: n[1] as number,
    hashrate_hs: v(2),
    power_w: v(3),
    temp_max_c: v(4),
    fan_min_rpm: v(5),
    boards_ok: v(6),
    boards_total: v(7),
    accepted: v(8),
    rejected: v(9),
    stale: v(10),
    hw_errors: v(11),
    pool_ok: v(12),
    error_kind: s.error?.kind ?? null,
    flags: sampleFlags(s),
  };
}

/**
 * Reduces a batch of pending reports to the plain data of the report transaction (`ReportWriter`).
 * Their numbers share one buffer: the structured clone to the writer thread copies it once, not
 * once per report (which counts when reports carry one rig each).
 */
export function toWriterItems(batch: readonly PendingReport[]): WriterItem[] {
  let total = 0;
  for (const p of batch) total += p.report.rigs.length;
  const all = new Float64Array(total * SAMPLE_NUMBERS);
  let at = 0;
  return batch.map((p) => {
    const end = at + p.report.rigs.length * SAMPLE_NUMBERS;
    const item = toWriterItem(p, all.subarray(at, end));
    at = end;
    return item;
  });
}

/** Reduces one pending report; `numbers` must hold SAMPLE_NUMBERS per rig. */
function toWriterItem(p: PendingReport, numbers: Float64Array): WriterItem {
  const r = p.report;
  const n = r.rigs.length;
  const rigs: string[] = new Array(n);
  const texts: Array<number | string | null> = [];
  for (let k = 0; k < n; k++) {
    const sample = r.rigs[k] as RigSample;
    rigs[k] = sample.rig;
    writeSampleNumbers(sample, numbers, k * SAMPLE_NUMBERS);
    const errorKind = sample.error?.kind ?? null;
    const flags = sampleFlags(sample);
    if (errorKind !== null || flags !== null) texts.push(k, errorKind, flags);
  }
  return {
    hostId: p.hostId,
    bootId: r.boot_id,
    seq: r.seq,
    ts: r.ts,
    receivedMs: p.receivedMs,
    historical: r.historical ? 1 : 0,
    skewMs: p.skewMs,
    skewed: p.skewed ? 1 : 0,
    agentJson: r.agent ? JSON.stringify(r.agent) : null,
    rigs,
    numbers,
    texts,
    probes: r.probes.map((q) => [
      q.ts,
      q.target,
      q.kind,
      q.role,
      q.ok ? 1 : 0,
      q.attempts,
      q.loss_ratio,
      q.latency_ms ?? null,
      q.error_class ?? null,
    ]),
  };
}

export class Store {
  private readonly options: StoreOptions;
  /** Why the last commit of reports failed; undefined once one succeeds (see `health()`). */
  private lastCommitError: string | undefined;
  /** Wall clock of the last commit of reports that succeeded (Unix ms; `hashwatch_store_last_commit_timestamp_seconds`). */
  lastCommitMs: number | undefined;
  private conn: Database.Database | undefined;
  private stmts: ReturnType<Store['prepare']> | undefined;
  private readonly siteIds = new Map<string, number>();
  private readonly hostIds = new Map<string, HostRef>();
  private readonly rigIds = new Map<string, number>();
  private readonly hostsWithBirth = new Set<number>();
  /** Latest sample per rig (by ts), kept in memory and flushed to `rigs` by flushLatest(). */
  private readonly latest = new Map<number, { id: number; ts: number }>();
  private readonly latestDirty = new Set<number>();
  private writer: ReportWriter | undefined;
  private thread: WriterThread | undefined;

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
      this.writer = new ReportWriter(db, this.rigIds);
      this.loadCaches();
      if (this.options.writerThread && file !== ':memory:') {
        this.thread = new WriterThread(
          { path: file, busyTimeoutMs: this.options.busyTimeoutMs, cacheSizeMiB: this.options.cacheSizeMiB },
          (err) => this.options.onWriterFailure?.(err),
        );
      }
    } catch (err) {
      throw toStoreError(err, `opening ${file}`);
    }
  }

  /** Ends the writer thread, if any, after the batches it was given. Call before `close()`. */
  async closeWriter(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    await thread?.close();
  }

  /** Flushes the latest-sample pointers, checkpoints and closes. Idempotent. */
  close(): void {
    if (!this.conn) return;
    // normally ended by closeWriter(); a thread left idle ends with its connection
    void this.closeWriter();
    try {
      this.flushLatest();
      this.conn.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // closing must not fail because the disk is full: the WAL is replayed at the next open
    }
    this.conn.close();
    this.conn = undefined;
    this.writer = undefined;
    this.stmts = undefined;
  }

  get isOpen(): boolean {
    return this.conn !== undefined;
  }

  /**
   * Bytes of the database file and its WAL (`hashwatch_store_size_bytes`), from two stats; files
   * that are not there count 0 (an in-memory database is 0).
   */
  sizeBytes(): number {
    let bytes = 0;
    for (const file of [this.options.path, `${this.options.path}-wal`]) {
      try {
        bytes += fs.statSync(file).size;
      } catch {
        // not created yet, or ':memory:'
      }
    }
    return bytes;
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
    };
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

  /**
   * Writes the in-memory latest-sample pointers to `rigs` on this thread (at close, and with the
   * checkpoint when writes are inline). Throws better-sqlite3's error; the pointers stay to be written.
   */
  flushLatest(): void {
    if (this.latestDirty.size === 0) return;
    writeLatest(this.db, this.dirtyLatest());
    this.latestDirty.clear();
  }

  /** The pointers not yet written, as triples `[rig id, sample id, ts, …]` (see `writeLatest`). */
  private dirtyLatest(): Float64Array {
    const triples = new Float64Array(this.latestDirty.size * 3);
    let i = 0;
    for (const rigId of this.latestDirty) {
      const l = this.latest.get(rigId);
      if (!l) continue;
      triples[i++] = rigId;
      triples[i++] = l.id;
      triples[i++] = l.ts;
    }
    return triples.subarray(0, i);
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

  private rigId(hostId: number, rig: string, nowMs: number, created: Array<[string, number]> = []): number {
    if (!this.writer) throw new StoreError('HW_ERR_STORE_CLOSED', this.options.path);
    return this.writer.rigId(hostId, rig, nowMs, created);
  }

  /** Stores a birth: host facts and the rig inventory (rigs missing from it stay, out of inventory). */
  recordBirth(site: string, host: string, birth: Birth, receivedMs: number): HostRef {
    const ref = this.ensureHost(site, host, receivedMs);
    const created: Array<[string, number]> = [];
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
          this.s.updateRigInventory.run({
            id: this.rigId(ref.hostId, rig.id, receivedMs, created),
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
      for (const [key] of created) this.rigIds.delete(key);
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
   * Commits a batch of reports in one transaction on this thread. A report already stored (same
   * host, boot_id, seq) is a duplicate and none of its samples are written. Throws a StoreError and
   * stores nothing when the commit fails: the caller must not ack.
   */
  commitReports(items: readonly PendingReport[]): CommitResult {
    if (!this.writer) throw new StoreError('HW_ERR_STORE_CLOSED', this.options.path);
    return this.applyWrite(this.writer.write(toWriterItems(items)));
  }

  /**
   * `commitReports` on the writer thread when `writerThread` is on (the main thread stays free while
   * the batch is written and synced), else on this one. Rejects with a StoreError.
   */
  async commit(items: readonly PendingReport[]): Promise<CommitResult> {
    try {
      const result = this.thread
        ? this.applyWrite(await this.thread.write(toWriterItems(items)))
        : this.commitReports(items);
      this.lastCommitError = undefined;
      this.lastCommitMs = Date.now();
      return result;
    } catch (err) {
      this.lastCommitError = `last commit failed: ${toStoreError(err, 'committing reports').message}`;
      throw err;
    }
  }

  private applyWrite(result: WriteResult): CommitResult {
    for (const [key, id] of result.createdRigs) this.rigIds.set(key, id);
    const l = result.latest;
    for (let i = 0; i < l.length; i += 3) this.noteLatest(l[i] as number, l[i + 1] as number, l[i + 2] as number);
    return { outcomes: result.outcomes, samplesWritten: result.samplesWritten };
  }

  /** Checkpoints the WAL on this thread (see `checkpointWal`). */
  maybeCheckpoint(): CheckpointResult {
    return checkpointWal(this.db, this.options.checkpointPages);
  }

  /**
   * Writes the latest-sample pointers, then checkpoints the WAL: on the writer thread when there is
   * one, else here. Copying a few seconds of full-rate ingest into the database file took 24–130 ms
   * on the main thread, and the pointers of 50,000 rigs 62–80 ms, every 5 s, during which the
   * broker, the acks and the views stood still. Rejects with a StoreError; pointers not written are
   * written by the next call.
   */
  async checkpoint(): Promise<CheckpointResult> {
    if (!this.conn) throw new StoreError('HW_ERR_STORE_CLOSED', this.options.path);
    if (!this.thread) {
      try {
        this.flushLatest();
      } catch (err) {
        throw toStoreError(err, 'writing the latest-sample pointers');
      }
      return this.maybeCheckpoint();
    }
    const triples = this.dirtyLatest();
    this.latestDirty.clear();
    try {
      return await this.thread.checkpoint(this.options.checkpointPages, triples);
    } catch (err) {
      // The triples went to the thread. A failure is rare (a lock that never came, a dead thread):
      // the next checkpoint writes every rig's pointer, the newest of each being in `latest`.
      for (const rigId of this.latest.keys()) this.latestDirty.add(rigId);
      throw err;
    }
  }

  /**
   * Whether the store can take reports (for /readyz and `hashwatch_store_up`): open, readable, and
   * its last commit of reports did not fail. The commit is the probe that matters: a full disk or
   * an I/O error shows there, on the writer thread. This never waits for a lock: a probe that took
   * the write lock (BEGIN IMMEDIATE, as before) waited up to `busy_timeout_ms` on the main thread
   * whenever a commit was being written, and a full disk did not fail it.
   */
  health(): { ok: boolean; detail: string } {
    if (!this.conn) return { ok: false, detail: 'database is not open' };
    if (this.lastCommitError !== undefined) return { ok: false, detail: this.lastCommitError };
    try {
      this.conn.prepare('SELECT count(*) FROM sqlite_master').get();
      return { ok: true, detail: this.options.path };
    } catch (err) {
      return { ok: false, detail: toStoreError(err, 'reading the database').message };
    }
  }
}
