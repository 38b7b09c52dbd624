/**
 * The durable spool: every report is committed here (SQLite, WAL, synchronous=FULL) before it is
 * published, and leaves only when the collector acknowledges it. It is the source of truth for
 * delivery; the MQTT client holds nothing but in-flight packets.
 *
 * Rows are keyed by (boot_id, seq). Replay takes this process's boot first (seq order), then the
 * older boots in insertion order: a restart after a long outage must not queue the new boot's
 * reports behind the previous boot's backlog (the collector acks exact seq ranges per boot, so
 * the newer boot overtaking the older one is safe). The spool is bounded by bytes and by age
 * (oldest dropped first, counted, logged). A disk that refuses writes (full, I/O error,
 * read-only) never throws out of here: the report is kept in a bounded in-memory queue, the
 * failure is counted and logged, and writes are retried on the next append.
 *
 * Payloads are stored deflated (see `packPayload`): a farm host cut off for days is what the
 * spool is for, and uncompressed a 100-rig host writes ~1 GB a day.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { SeqRange } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import type { Logger } from './log.js';

export interface SpoolOptions {
  /** Directory of the spool file (created if missing). */
  dir: string;
  /** Bound on the stored report bytes; the oldest reports are dropped past it. */
  maxBytes: number;
  /** Reports older than this (by report ts) are dropped. */
  maxAgeMs: number;
  /** Reports kept in memory while the disk refuses writes; the oldest are dropped past it. */
  memoryMaxReports: number;
  log: Logger;
  /** File name inside `dir`. */
  fileName?: string;
  /** SQLite `max_page_count`: lets tests make the disk "full" without filling a real disk. */
  maxPageCount?: number;
}

/** One spooled report: the exact bytes that were (or will be) published. */
export interface SpoolRow {
  bootId: string;
  seq: number;
  /** The report's ts (Unix ms): age bound and publish latency are measured from it. */
  ts: number;
  /**
   * Bytes the report takes in the spool: its UTF-8 length when handed to `append` or held in
   * memory, its stored (deflated) length when read back from disk.
   */
  size: number;
  /** The encoded report, as sent live (without `historical`). */
  payload: string;
}

/** Where `append` put a report. */
export type AppendOutcome = 'disk' | 'memory' | 'dropped';

/** Counters of spool trouble, merged into the report's `agent.errors`. */
export interface SpoolErrorCounts {
  spool_disk_full: number;
  spool_io_error: number;
  spool_dropped_bytes: number;
  spool_dropped_age: number;
  spool_dropped_memory: number;
  /** Rows whose stored payload could not be inflated (a damaged file): dropped, they cannot be sent. */
  spool_dropped_corrupt: number;
}

/** A row as read from disk, before `unpackPayload`. */
interface StoredRow extends Omit<SpoolRow, 'payload'> {
  payload: Buffer | string;
}

interface MemRow extends SpoolRow {
  sentMs: number | null;
}

type Db = Database.Database;
type Stmt = Database.Statement;

// `size` is the stored length of `payload`, which is a BLOB of deflated JSON (`packPayload`), or
// TEXT in rows written by agents before that: a column's TEXT affinity keeps a BLOB a BLOB.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS spool (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  boot_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  size INTEGER NOT NULL,
  payload TEXT NOT NULL,
  sent_ms INTEGER,
  UNIQUE (boot_id, seq)
);
CREATE INDEX IF NOT EXISTS spool_ts ON spool (ts);
CREATE INDEX IF NOT EXISTS spool_sent ON spool (sent_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`;

/**
 * Deflate level of stored payloads. Measured on a 100-rig report of the simulated farm
 * (110,569 B of JSON, varied values): level 6 stores 5,467 B (20x) in 0.36 ms and inflates in
 * 0.35 ms, so an agent polling 200 rigs every 10 s spends <0.01 % of a core on it. Brotli (q5)
 * stores 22 % less but costs the process ~40 MB more RSS; level 1 stores 54 % more.
 */
const DEFLATE_LEVEL = 6;
/** Output chunk for inflating: one chunk holds a typical report (node's 16 KiB default takes many). */
const INFLATE_CHUNK_BYTES = 256 * 1024;

/** The stored form of a payload: raw deflate. Exported for tools that build spool files in bulk. */
export function packPayload(payload: string): Buffer {
  return deflateRawSync(payload, { level: DEFLATE_LEVEL });
}

/**
 * The payload of a stored row. A TEXT value is a row written before payloads were deflated and
 * is returned as it is, so a spool left by an older agent still replays. Throws on damaged data.
 */
export function unpackPayload(stored: Buffer | string): string {
  if (typeof stored === 'string') return stored;
  return inflateRawSync(stored, { chunkSize: INFLATE_CHUNK_BYTES }).toString('utf8');
}

/** How often a spool that could not open its file tries again. */
const REOPEN_INTERVAL_MS = 60_000;

function keyOf(bootId: string, seq: number): string {
  return `${bootId}\u0000${seq}`;
}

/** Classifies a write failure: operators fix a full disk differently from a failing one. */
function diskErrorKind(err: unknown): 'spool_disk_full' | 'spool_io_error' {
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC') return 'spool_disk_full';
  return 'spool_io_error';
}

export class Spool {
  private readonly options: SpoolOptions;
  private db: Db | null = null;
  private stmts: {
    insert: Stmt;
    deleteRange: Stmt;
    oldest: Stmt;
    deleteId: Stmt;
    deleteOlder: Stmt;
    batchCurrent: Stmt;
    batchOlder: Stmt;
    markSent: Stmt;
    resetSent: Stmt;
    markResend: Stmt;
    inflight: Stmt;
    minTs: Stmt;
    setMeta: Stmt;
  } | null = null;
  private diskDepth = 0;
  private diskBytes = 0;
  private droppedTotal = 0;
  private readonly memory = new Map<string, MemRow>();
  private readonly counts: SpoolErrorCounts = {
    spool_disk_full: 0,
    spool_io_error: 0,
    spool_dropped_bytes: 0,
    spool_dropped_age: 0,
    spool_dropped_memory: 0,
    spool_dropped_corrupt: 0,
  };
  private lastOpenAttemptMs = Number.NEGATIVE_INFINITY;
  private bootId = '';

  constructor(options: SpoolOptions) {
    this.options = options;
  }

  /** Path of the spool database file. */
  get path(): string {
    return join(this.options.dir, this.options.fileName ?? 'spool.sqlite');
  }

  /**
   * Opens (or creates) the spool file and records this process's boot. Returns the first seq to
   * use for `bootId` (0 for a fresh boot id). Never throws: a spool that cannot open runs in
   * memory and retries the file later.
   */
  open(bootId: string, nowMs: number): number {
    this.bootId = bootId;
    this.tryOpen(nowMs);
    if (!this.db) return 0;
    const row = this.db.prepare('SELECT max(seq) AS m FROM spool WHERE boot_id = ?').get(bootId) as {
      m: number | null;
    };
    return row.m === null ? 0 : row.m + 1;
  }

  private tryOpen(nowMs: number): void {
    this.lastOpenAttemptMs = nowMs;
    let db: Db | null = null;
    try {
      mkdirSync(this.options.dir, { recursive: true });
      db = new Database(this.path);
      db.pragma('journal_mode = WAL');
      // FULL: the insert that precedes publishing must survive a power cut.
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      // better-sqlite3 builds SQLite with a 16 MB page cache; the spool reads each row once (replay)
      // and writes it once, so a cache only has to hold one transaction's pages: 2 MiB covers the
      // largest report (1 MiB) without spilling, and keeps a day of replayed backlog from filling
      // the agent's memory with pages it will not read again.
      db.pragma('cache_size = -2048');
      if (this.options.maxPageCount !== undefined) db.pragma(`max_page_count = ${this.options.maxPageCount}`);
      db.exec(SCHEMA);
      const stats = db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM spool').get() as {
        n: number;
        b: number;
      };
      const dropped = db.prepare("SELECT value FROM meta WHERE key = 'dropped_total'").get() as
        | { value: string }
        | undefined;
      this.stmts = {
        insert: db.prepare('INSERT INTO spool (boot_id, seq, ts, size, payload, sent_ms) VALUES (?, ?, ?, ?, ?, ?)'),
        deleteRange: db.prepare('DELETE FROM spool WHERE boot_id = ? AND seq BETWEEN ? AND ? RETURNING ts, size'),
        oldest: db.prepare('SELECT id, ts, size FROM spool ORDER BY id LIMIT ?'),
        deleteId: db.prepare('DELETE FROM spool WHERE id = ?'),
        deleteOlder: db.prepare('DELETE FROM spool WHERE ts < ? RETURNING size'),
        // Two queries rather than one ORDER BY (boot_id = ?): each walks an index in order and stops
        // at the limit, where the single query sorts every due row of a day's backlog per pump tick.
        batchCurrent: db.prepare(
          'SELECT boot_id AS bootId, seq, ts, size, payload FROM spool WHERE boot_id = ? AND (sent_ms IS NULL OR sent_ms < ?) ORDER BY seq LIMIT ?',
        ),
        batchOlder: db.prepare(
          'SELECT boot_id AS bootId, seq, ts, size, payload FROM spool WHERE boot_id <> ? AND (sent_ms IS NULL OR sent_ms < ?) ORDER BY id LIMIT ?',
        ),
        markSent: db.prepare('UPDATE spool SET sent_ms = ? WHERE boot_id = ? AND seq = ?'),
        resetSent: db.prepare('UPDATE spool SET sent_ms = NULL WHERE sent_ms IS NOT NULL'),
        markResend: db.prepare('UPDATE spool SET sent_ms = NULL WHERE boot_id = ? AND seq BETWEEN ? AND ?'),
        inflight: db.prepare('SELECT count(*) AS n FROM spool WHERE sent_ms >= ?'),
        minTs: db.prepare('SELECT min(ts) AS t FROM spool'),
        setMeta: db.prepare(
          'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        ),
      };
      this.diskDepth = stats.n;
      this.diskBytes = stats.b;
      this.droppedTotal = Math.max(this.droppedTotal, dropped ? Number(dropped.value) || 0 : 0);
      // Reports sent by a previous process may never have reached anyone: all are due again.
      this.stmts.resetSent.run();
      this.stmts.setMeta.run('boot_id', this.bootId);
      this.db = db;
      if (stats.n > 0) {
        this.options.log.info(
          { spool_depth: stats.n, spool_bytes: stats.b, path: this.path },
          'Spool holds reports from before this start; they will be replayed as historical',
        );
      }
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
      this.stmts = null;
      try {
        db?.close();
      } catch {
        // the handle is unusable either way
      }
      this.options.log.error(
        { err: (err as Error).message, code: (err as { code?: unknown }).code, path: this.path },
        `Cannot open the spool file ${this.path}; keeping up to ${this.options.memoryMaxReports} reports in memory until it can be written. Check the disk and the data_dir permissions`,
      );
    }
  }

  /** Closes the file. Safe to call twice. */
  close(): void {
    const db = this.db;
    this.db = null;
    this.stmts = null;
    if (db) {
      try {
        db.close();
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message }, 'Spool did not close cleanly');
      }
    }
  }

  /**
   * Commits a report before it is published. Then enforces the byte and age bounds. Never throws.
   * `sentMs` marks the row as already handed to the publisher (the live path) at that time, in
   * the same commit: a separate `markSent` would rewrite the whole row (the payload comes before
   * `sent_ms`) and fsync again, every round.
   */
  append(row: SpoolRow, nowMs: number, sentMs: number | null = null): AppendOutcome {
    if (!this.db && nowMs - this.lastOpenAttemptMs >= REOPEN_INTERVAL_MS) this.tryOpen(nowMs);
    this.flushMemory();
    let outcome: AppendOutcome = 'disk';
    if (this.memory.size > 0 || !this.writeRow(row, sentMs)) {
      outcome = this.keepInMemory({ ...row, sentMs });
    }
    this.enforceBounds(nowMs);
    return outcome;
  }

  private writeRow(row: SpoolRow, sentMs: number | null): boolean {
    if (!this.db || !this.stmts) return false;
    try {
      const stored = packPayload(row.payload);
      this.stmts.insert.run(row.bootId, row.seq, row.ts, stored.byteLength, stored, sentMs);
      this.diskDepth++;
      this.diskBytes += stored.byteLength;
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        // Already spooled (a retry of a row that did commit): nothing to do.
        return true;
      }
      const kind = diskErrorKind(err);
      this.counts[kind]++;
      this.options.log.error(
        { err: (err as Error).message, code: (err as { code?: unknown }).code, path: this.path, kind },
        kind === 'spool_disk_full'
          ? `Spool disk is full (${this.path}); reports are kept in memory (bounded) until space is freed`
          : `Spool write failed (${this.path}); reports are kept in memory (bounded). Check the disk`,
      );
      return false;
    }
  }

  private keepInMemory(row: MemRow): AppendOutcome {
    if (this.options.memoryMaxReports <= 0) {
      this.recordDrop('spool_dropped_memory', 1, row.ts);
      return 'dropped';
    }
    this.memory.set(keyOf(row.bootId, row.seq), row);
    while (this.memory.size > this.options.memoryMaxReports) {
      const first = this.memory.keys().next();
      if (first.done) break;
      const dropped = this.memory.get(first.value);
      this.memory.delete(first.value);
      this.recordDrop('spool_dropped_memory', 1, dropped?.ts);
    }
    return 'memory';
  }

  /** Moves reports kept in memory to disk, oldest first, as soon as the disk takes writes again. */
  private flushMemory(): void {
    if (!this.db || this.memory.size === 0) return;
    for (const [key, row] of this.memory) {
      if (!this.writeRow(row, row.sentMs)) return;
      this.memory.delete(key);
    }
    this.options.log.info('Spool disk accepts writes again; reports kept in memory are on disk now');
  }

  private recordDrop(kind: keyof SpoolErrorCounts, count: number, oldestTs: number | undefined): void {
    if (count <= 0) return;
    this.counts[kind] += count;
    this.droppedTotal += count;
    try {
      this.stmts?.setMeta.run('dropped_total', String(this.droppedTotal));
    } catch {
      // the counter is best effort; the drop itself already happened
    }
    const reasons: Record<string, string> = {
      spool_dropped_age: 'older than spool.max_age_s',
      spool_dropped_bytes: 'spool is over spool.max_bytes',
      spool_dropped_corrupt: 'its stored payload is damaged and cannot be read',
    };
    const reason = reasons[kind] ?? 'disk refuses writes and the in-memory queue is full';
    this.options.log.warn(
      {
        dropped: count,
        dropped_total: this.droppedTotal,
        oldest_dropped_ts: oldestTs,
        reason: kind,
      },
      `Dropped ${count} unsent report(s) from the spool: ${reason}`,
    );
  }

  /** Drops reports past the age bound, then the oldest ones past the byte bound. */
  enforceBounds(nowMs: number): void {
    const cutoff = nowMs - this.options.maxAgeMs;
    let agedMem = 0;
    for (const [key, row] of this.memory) {
      if (row.ts < cutoff) {
        this.memory.delete(key);
        agedMem++;
      }
    }
    if (agedMem > 0) this.recordDrop('spool_dropped_age', agedMem, undefined);
    if (!this.db || !this.stmts) return;
    const stmts = this.stmts;
    try {
      const aged = stmts.deleteOlder.all(cutoff) as { size: number }[];
      if (aged.length > 0) {
        this.diskDepth -= aged.length;
        this.diskBytes -= aged.reduce((s, r) => s + r.size, 0);
        this.recordDrop('spool_dropped_age', aged.length, undefined);
      }
      if (this.diskBytes <= this.options.maxBytes) return;
      let dropped = 0;
      let firstTs: number | undefined;
      const drop = this.db.transaction(() => {
        while (this.diskBytes > this.options.maxBytes && this.diskDepth > 0) {
          const rows = stmts.oldest.all(64) as { id: number; ts: number; size: number }[];
          if (rows.length === 0) break;
          for (const r of rows) {
            if (this.diskBytes <= this.options.maxBytes) break;
            stmts.deleteId.run(r.id);
            firstTs ??= r.ts;
            this.diskDepth--;
            this.diskBytes -= r.size;
            dropped++;
          }
        }
      });
      drop();
      this.recordDrop('spool_dropped_bytes', dropped, firstTs);
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
      this.options.log.error({ err: (err as Error).message }, 'Spool bound enforcement failed; will retry');
    }
  }

  /**
   * Up to `limit` reports due for (re)sending: never sent in this connection, or sent before
   * `resendBeforeMs` without an ack. This boot's reports come first, in seq order (the ones
   * spooled before the connection came up, or whose ack timed out), then older boots' backlog,
   * oldest first; reports held in memory follow the disk rows of their boot. Does not mark
   * them; call `markSent`.
   */
  nextBatch(limit: number, resendBeforeMs: number): SpoolRow[] {
    const out: SpoolRow[] = [];
    if (limit <= 0) return out;
    const due = (row: MemRow) => row.sentMs === null || row.sentMs < resendBeforeMs;
    this.readDisk(out, 'batchCurrent', resendBeforeMs, limit);
    for (const row of this.memory.values()) {
      if (out.length >= limit) return out;
      if (row.bootId === this.bootId && due(row)) out.push(row);
    }
    this.readDisk(out, 'batchOlder', resendBeforeMs, limit);
    for (const row of this.memory.values()) {
      if (out.length >= limit) break;
      if (row.bootId !== this.bootId && due(row)) out.push(row);
    }
    return out;
  }

  private readDisk(out: SpoolRow[], which: 'batchCurrent' | 'batchOlder', resendBeforeMs: number, limit: number): void {
    if (!this.stmts || out.length >= limit) return;
    let rows: StoredRow[];
    try {
      rows = this.stmts[which].all(this.bootId, resendBeforeMs, limit - out.length) as StoredRow[];
    } catch (err) {
      this.counts.spool_io_error++;
      this.options.log.error({ err: (err as Error).message }, 'Spool read failed');
      return;
    }
    for (const row of rows) {
      let payload: string;
      try {
        payload = unpackPayload(row.payload);
      } catch (err) {
        this.dropCorrupt(row, err);
        continue;
      }
      out.push({ bootId: row.bootId, seq: row.seq, ts: row.ts, size: row.size, payload });
    }
  }

  /** A row that cannot be inflated would block the replay forever: drop it, count it, say which. */
  private dropCorrupt(row: StoredRow, err: unknown): void {
    try {
      const gone = this.stmts?.deleteRange.all(row.bootId, row.seq, row.seq) as { size: number }[] | undefined;
      for (const r of gone ?? []) {
        this.diskDepth--;
        this.diskBytes -= r.size;
      }
    } catch {
      // still counted and logged below; the next read tries the delete again
    }
    this.options.log.error(
      { boot_id: row.bootId, seq: row.seq, ts: row.ts, err: (err as Error).message, path: this.path },
      'Spooled report is damaged and cannot be sent',
    );
    this.recordDrop('spool_dropped_corrupt', 1, row.ts);
  }

  /** Records that these reports were handed to MQTT at `nowMs` (they are now in flight). */
  markSent(rows: readonly Pick<SpoolRow, 'bootId' | 'seq'>[], nowMs: number): void {
    const stmts = this.stmts;
    const onDisk: Pick<SpoolRow, 'bootId' | 'seq'>[] = [];
    for (const r of rows) {
      const mem = this.memory.get(keyOf(r.bootId, r.seq));
      if (mem) mem.sentMs = nowMs;
      else onDisk.push(r);
    }
    if (!this.db || !stmts || onDisk.length === 0) return;
    try {
      this.db.transaction(() => {
        for (const r of onDisk) stmts.markSent.run(nowMs, r.bootId, r.seq);
      })();
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
    }
  }

  /** Everything in flight is due again (a new connection: unacked sends may be lost). */
  resetSent(): void {
    for (const row of this.memory.values()) row.sentMs = null;
    try {
      this.stmts?.resetSent.run();
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
    }
  }

  /** The collector asked for [fromSeq, toSeq] of `bootId` again; returns how many are still spooled. */
  markResend(bootId: string, fromSeq: number, toSeq: number): number {
    let n = 0;
    for (const row of this.memory.values()) {
      if (row.bootId === bootId && row.seq >= fromSeq && row.seq <= toSeq) {
        row.sentMs = null;
        n++;
      }
    }
    try {
      if (this.stmts) n += this.stmts.markResend.run(bootId, fromSeq, toSeq).changes;
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
    }
    return n;
  }

  /** Reports sent at or after `sinceMs` and not yet acknowledged. */
  inflight(sinceMs: number): number {
    let n = 0;
    for (const row of this.memory.values()) if (row.sentMs !== null && row.sentMs >= sinceMs) n++;
    try {
      if (this.stmts) n += (this.stmts.inflight.get(sinceMs) as { n: number }).n;
    } catch {
      // counted as zero: the pump retries on the next tick
    }
    return n;
  }

  /**
   * The collector committed these seq ranges of `bootId`: delete them. Returns the ts of every
   * row removed (for publish latency). A failed delete only means a duplicate later.
   */
  ack(bootId: string, ranges: readonly SeqRange[]): number[] {
    const acked: number[] = [];
    for (const [from, to] of ranges) {
      for (const [key, row] of this.memory) {
        if (row.bootId === bootId && row.seq >= from && row.seq <= to) {
          this.memory.delete(key);
          acked.push(row.ts);
        }
      }
    }
    const db = this.db;
    const stmts = this.stmts;
    if (!db || !stmts) return acked;
    try {
      db.transaction(() => {
        for (const [from, to] of ranges) {
          if (to < from) continue;
          for (const r of stmts.deleteRange.all(bootId, from, to) as { ts: number; size: number }[]) {
            this.diskDepth--;
            this.diskBytes -= r.size;
            acked.push(r.ts);
          }
        }
      })();
    } catch (err) {
      this.counts[diskErrorKind(err)]++;
      this.options.log.error({ err: (err as Error).message }, 'Spool could not delete acknowledged reports');
    }
    return acked;
  }

  /** Reports waiting for an ack (disk and memory). */
  depth(): number {
    return this.diskDepth + this.memory.size;
  }

  /** Report bytes waiting for an ack: stored (deflated) bytes on disk plus raw bytes in memory. */
  bytes(): number {
    let mem = 0;
    for (const row of this.memory.values()) mem += row.size;
    return this.diskBytes + mem;
  }

  /** ts of the oldest report waiting, or undefined when empty. */
  oldestTs(): number | undefined {
    let oldest: number | undefined;
    try {
      const t = this.stmts ? (this.stmts.minTs.get() as { t: number | null }).t : null;
      if (t !== null) oldest = t;
    } catch {
      // fall through to memory
    }
    for (const row of this.memory.values()) if (oldest === undefined || row.ts < oldest) oldest = row.ts;
    return oldest;
  }

  /** Reports dropped unsent over the spool's lifetime (kept across restarts). */
  dropped(): number {
    return this.droppedTotal;
  }

  /** Reports held in memory because the disk refused them. */
  memoryDepth(): number {
    return this.memory.size;
  }

  /** Failure and drop counters since this process started. */
  errorCounts(): SpoolErrorCounts {
    return { ...this.counts };
  }
}
