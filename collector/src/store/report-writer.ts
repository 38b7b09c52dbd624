/**
 * The report transaction: `reports`, `samples`, `probe_results` and new `rigs` rows of a batch,
 * written in one transaction on one connection. It takes reports already reduced to their stored
 * columns (`WriterItem`, plain data that crosses a thread boundary cheaply), so the same code runs
 * inline in the Store and on the writer thread (`writer-thread.ts`), each with its own connection.
 * Imports nothing but SQLite and the error mapping: it is the writer thread's whole program.
 */
import type Database from 'better-sqlite3';
import { toStoreError } from './errors.js';

/**
 * Numbers per sample in `WriterItem.numbers`: ts, reachable, hashrate_hs, power_w, temp_max_c,
 * fan_min_rpm, boards_ok, boards_total, accepted, rejected, stale, hw_errors, pool_ok (NaN = NULL).
 */
export const SAMPLE_NUMBERS = 13;
/** Rows per multi-row sample INSERT (17 columns each, well under SQLite's 32766 parameters). */
const SAMPLE_ROWS_PER_INSERT = 50;
const SAMPLE_COLUMNS = 17;

/** One probe result as stored: ts, target, kind, role, ok, attempts, loss_ratio, latency_ms, error_class. */
export type WriterProbe = [number, string, string, string, 0 | 1, number, number, number | null, string | null];

/** A report reduced to what the report transaction stores. */
export interface WriterItem {
  hostId: number;
  bootId: string;
  seq: number;
  ts: number;
  receivedMs: number;
  historical: 0 | 1;
  skewMs: number | null;
  skewed: 0 | 1;
  agentJson: string | null;
  /** Rig names, in report order. */
  rigs: string[];
  /**
   * SAMPLE_NUMBERS numbers per rig, in the order of `rigs`. A typed array rather than a list of
   * values: filling it allocates nothing per sample, and it crosses to the writer thread as one copy.
   */
  numbers: Float64Array;
  /** (index in `rigs`, error_kind, flags) of each rig that has either, by ascending index. */
  texts: Array<number | string | null>;
  probes: WriterProbe[];
}

export type CommitOutcome = 'stored' | 'duplicate';

export interface WriteResult {
  outcomes: CommitOutcome[];
  samplesWritten: number;
  /** (rig_id, sample id, ts) triples of every written sample, flat: the Store's latest-sample pointers. */
  latest: number[];
  /** Rigs this transaction created, as (`hostId/rig`, rig_id), for the caller's id cache. */
  createdRigs: Array<[string, number]>;
}

/** Writes report batches on one connection; `rigIds` caches `hostId/rig` → rig_id for it. */
export class ReportWriter {
  private readonly db: Database.Database;
  private readonly rigIds: Map<string, number>;
  private readonly sampleInserts = new Map<number, Database.Statement>();
  private readonly insertReport: Database.Statement;
  private readonly insertProbe: Database.Statement;
  private readonly insertRig: Database.Statement;
  private readonly selectRig: Database.Statement<[number, string], { id: number }>;

  constructor(db: Database.Database, rigIds: Map<string, number>) {
    this.db = db;
    this.rigIds = rigIds;
    this.insertReport = db.prepare(
      `INSERT INTO reports (host_id, boot_id, seq, ts, received_ms, historical, skew_ms, skewed, rig_count, agent_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host_id, boot_id, seq) DO NOTHING`,
    );
    this.insertProbe = db.prepare(
      `INSERT INTO probe_results (host_id, report_id, ts, target, kind, role, ok, attempts, loss_ratio, latency_ms, error_class)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.insertRig = db.prepare(
      'INSERT INTO rigs (host_id, name, first_seen_ms) VALUES (?, ?, ?) ON CONFLICT (host_id, name) DO NOTHING',
    );
    this.selectRig = db.prepare<[number, string], { id: number }>('SELECT id FROM rigs WHERE host_id = ? AND name = ?');
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

  /**
   * The id of a rig, created if needed (and then appended to `created`, so a caller whose
   * transaction rolls back can forget it again).
   */
  rigId(hostId: number, rig: string, nowMs: number, created: Array<[string, number]>): number {
    const key = `${hostId}/${rig}`;
    let id = this.rigIds.get(key);
    if (id === undefined) {
      // DO NOTHING + SELECT: another connection (a birth on the main thread) may have created it.
      this.insertRig.run(hostId, rig, nowMs);
      id = (this.selectRig.get(hostId, rig) as { id: number }).id;
      this.rigIds.set(key, id);
      created.push([key, id]);
    }
    return id;
  }

  /**
   * Commits a batch in one IMMEDIATE transaction (the write lock is taken up front, so a second
   * connection's commit in between can only make it wait, never fail it). A report already stored
   * (same host, boot_id, seq) is a duplicate and none of its samples are written. Throws a
   * StoreError and stores nothing when the commit fails.
   */
  write(items: readonly WriterItem[]): WriteResult {
    const outcomes: CommitOutcome[] = [];
    const latest: number[] = [];
    const createdRigs: Array<[string, number]> = [];
    let samplesWritten = 0;
    const run = this.db.transaction(() => {
      for (const item of items) {
        const info = this.insertReport.run(
          item.hostId,
          item.bootId,
          item.seq,
          item.ts,
          item.receivedMs,
          item.historical,
          item.skewMs,
          item.skewed,
          item.rigs.length,
          item.agentJson,
        );
        if (info.changes === 0) {
          outcomes.push('duplicate');
          continue;
        }
        outcomes.push('stored');
        const reportId = Number(info.lastInsertRowid);
        const n = item.rigs.length;
        const num = item.numbers;
        const texts = item.texts;
        let t = 0;
        // Multi-row INSERTs: the per-call cost of better-sqlite3 dominates single-row inserts.
        for (let first = 0; first < n; first += SAMPLE_ROWS_PER_INSERT) {
          const rows = Math.min(SAMPLE_ROWS_PER_INSERT, n - first);
          const params: Array<number | string | null> = new Array(rows * SAMPLE_COLUMNS);
          const rigIdsOfChunk: number[] = new Array(rows);
          let p = 0;
          for (let k = 0; k < rows; k++) {
            const index = first + k;
            const base = index * SAMPLE_NUMBERS;
            const rigId = this.rigId(item.hostId, item.rigs[index] as string, item.receivedMs, createdRigs);
            rigIdsOfChunk[k] = rigId;
            params[p++] = rigId;
            params[p++] = num[base] as number; // ts
            params[p++] = reportId;
            for (let c = 1; c < SAMPLE_NUMBERS; c++) {
              const x = num[base + c] as number;
              params[p++] = Number.isNaN(x) ? null : x;
            }
            if (texts[t] === index) {
              params[p++] = texts[t + 1] as string | null; // error_kind
              params[p++] = texts[t + 2] as string | null; // flags
              t += 3;
            } else {
              params[p++] = null;
              params[p++] = null;
            }
          }
          const res = this.sampleInsert(rows).run(params);
          // One statement into a rowid table with the write lock held: consecutive rowids.
          const lastId = Number(res.lastInsertRowid);
          for (let k = 0; k < rows; k++) {
            latest.push(rigIdsOfChunk[k] as number, lastId - rows + 1 + k, num[(first + k) * SAMPLE_NUMBERS] as number);
          }
          samplesWritten += rows;
        }
        for (const p of item.probes) this.insertProbe.run(item.hostId, reportId, ...p);
      }
    });
    try {
      run.immediate();
    } catch (err) {
      for (const [key] of createdRigs) this.rigIds.delete(key);
      throw toStoreError(err, `committing a batch of ${items.length} reports`);
    }
    return { outcomes, samplesWritten, latest, createdRigs };
  }
}
