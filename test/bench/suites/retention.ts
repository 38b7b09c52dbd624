/**
 * Retention at farm scale: how long one retention transaction holds the collector's main thread
 * (and the database's write lock) when a whole tier comes due, with R rigs at a 10 s interval.
 * The database is built directly (one 10-minute bucket of raw samples, one hour of accounting, one
 * hour of 1-minute rows), then the collector's `runRetentionStep` runs one chunk at a time, its
 * slices sized by the collector's own pacer at the default `retention.chunk_target_ms`.
 * Baseline, same run, same data: the previous way, one transaction per whole 10-minute bucket and
 * per whole hour of 1-minute rows.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../../../collector/src/config.js';
import { runRetentionStep } from '../../../collector/src/store/retention.js';
import { RetentionPacer } from '../../../collector/src/store/retention-pacer.js';
import { Store } from '../../../collector/src/store/store.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const STEP_MS = 10_000;
const OPTIONS = { rawDays: 7, minuteDays: 90, dropAfterDays: 400, chunkRows: 5000 };

export interface RetentionPhase {
  phase: 'raw → 1 minute' | '1 minute → 1 hour' | 'accounting compaction';
  rows: number;
  chunks: number;
  totalMs: number;
  longestMs: number;
  /** The same rows in one transaction per bucket or hour, as before (none for accounting). */
  baselineLongestMs?: number;
  baselineTotalMs?: number;
  /** Accounting only: rows after compaction. */
  rowsAfter?: number;
}

export interface RetentionResult {
  rigs: number;
  phases: RetentionPhase[];
}

function build(path: string, rigs: number, nowMs: number): void {
  const store = new Store({ path, busyTimeoutMs: 5000, cacheSizeMiB: 64, checkpointPages: 1_000_000 });
  store.open();
  const db = store.db;
  const bucket = Math.floor((nowMs - 8 * DAY_MS) / 600_000) * 600_000;
  const hour = Math.floor((nowMs - 8 * DAY_MS) / HOUR_MS) * HOUR_MS;
  const minuteHour = Math.floor((nowMs - 100 * DAY_MS) / HOUR_MS) * HOUR_MS;
  const rig = db.prepare('INSERT INTO rigs (host_id, name, first_seen_ms) VALUES (?, ?, 0)');
  const sample = db.prepare(
    `INSERT INTO samples (rig_id, ts, report_id, reachable, hashrate_hs, power_w, temp_max_c, fan_min_rpm,
       boards_ok, boards_total, accepted, rejected, stale, hw_errors, pool_ok)
     VALUES (?, ?, 0, 1, ?, 3250, 71, 4800, 3, 3, 100, 1, 0, 2, 1)`,
  );
  const minute = db.prepare(
    `INSERT INTO samples_1m (rig_id, ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm)
     VALUES (?, ?, 6, 6, 6.3e14, 6, 19500, 6, 71, 4800)`,
  );
  const acct = db.prepare(
    `INSERT INTO accounting (rig_id, site_id, ts, duration_ms, state, cause, expected_hs, actual_hs, deficit_hashes, energy_j)
     VALUES (?, 1, ?, 10000, ?, ?, 1.05e14, ?, ?, 32500)`,
  );
  db.transaction(() => {
    db.prepare("INSERT INTO sites (name, first_seen_ms) VALUES ('farm', 0)").run();
    for (let h = 0; h < Math.ceil(rigs / 200); h++)
      db.prepare('INSERT INTO hosts (site_id, name, first_seen_ms) VALUES (1, ?, 0)').run(`host-${h}`);
    for (let k = 1; k <= rigs; k++) rig.run(Math.ceil(k / 200), `rig-${k}`);
  })();
  // In arrival order, as ingest writes them: every rig's sample of one interval, then the next.
  for (let i = 0; i < 60; i++)
    db.transaction(() => {
      for (let k = 1; k <= rigs; k++) sample.run(k, bucket + i * STEP_MS + (k % 7), 1.05e14);
    })();
  for (let i = 0; i < 360; i++)
    db.transaction(() => {
      for (let k = 1; k <= rigs; k++) {
        // One rig in 20 degraded for 5 minutes of the hour: runs of two states, as a real hour has.
        const degraded = k % 20 === 0 && i >= 120 && i < 150;
        const state = degraded ? 'degraded' : 'ok';
        acct.run(k, hour + i * STEP_MS + (k % 7), state, state, degraded ? 8e13 : 1.05e14, degraded ? 2.5e18 : 0);
      }
    })();
  for (let i = 0; i < 60; i++)
    db.transaction(() => {
      for (let k = 1; k <= rigs; k++) minute.run(k, minuteHour + i * 60_000);
    })();
  store.close();
}

function count(db: Database.Database, table: string): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** The previous retention's statements: one whole bucket, one whole hour, per transaction. */
function baseline(path: string, nowMs: number): { raw: number[]; minute: number[] } {
  const db = new Database(path);
  const timed = (fn: () => void) => {
    const t = performance.now();
    db.transaction(fn)();
    return performance.now() - t;
  };
  const raw: number[] = [];
  const minute: number[] = [];
  for (const { b } of db.prepare('SELECT DISTINCT ts / 600000 AS b FROM samples').all() as { b: number }[]) {
    raw.push(
      timed(() => {
        db.prepare(
          `INSERT INTO samples_1m (rig_id, ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm)
           SELECT rig_id, (ts / 60000) * 60000, COUNT(*), SUM(reachable), SUM(hashrate_hs), COUNT(hashrate_hs),
                  SUM(power_w), COUNT(power_w), MAX(temp_max_c), MIN(fan_min_rpm)
           FROM samples WHERE ts / 600000 = ? GROUP BY rig_id, ts / 60000
           ON CONFLICT (rig_id, ts) DO UPDATE SET n = samples_1m.n + excluded.n`,
        ).run(b);
        db.prepare('DELETE FROM samples WHERE ts / 600000 = ?').run(b);
      }),
    );
  }
  const cutoff = nowMs - OPTIONS.minuteDays * DAY_MS;
  for (;;) {
    const ts = (db.prepare('SELECT MIN(ts) AS ts FROM samples_1m').get() as { ts: number | null }).ts;
    if (ts === null) break;
    const hour = Math.floor(ts / HOUR_MS) * HOUR_MS;
    if (hour + HOUR_MS > cutoff) break;
    minute.push(
      timed(() => {
        db.prepare(
          `INSERT INTO samples_1h (rig_id, ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm)
           SELECT rig_id, (ts / 3600000) * 3600000, SUM(n), SUM(reachable_n), SUM(hashrate_sum_hs), SUM(hashrate_n),
                  SUM(power_sum_w), SUM(power_n), MAX(temp_max_c), MIN(fan_min_rpm)
           FROM samples_1m WHERE ts >= ? AND ts < ? GROUP BY rig_id, ts / 3600000
           ON CONFLICT (rig_id, ts) DO UPDATE SET n = samples_1h.n + excluded.n`,
        ).run(hour, hour + HOUR_MS);
        db.prepare('DELETE FROM samples_1m WHERE ts >= ? AND ts < ?').run(hour, hour + HOUR_MS);
      }),
    );
  }
  db.close();
  return { raw, minute };
}

export function benchRetention(rigs: number, log: (s: string) => void): RetentionResult {
  const dir = mkdtempSync(join(tmpdir(), 'hw-bench-retention-'));
  try {
    const nowMs = Date.UTC(2026, 11, 1);
    const path = join(dir, 'hw.db');
    const t = performance.now();
    build(path, rigs, nowMs);
    log(`retention: built ${rigs} rigs in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    const copy = join(dir, 'baseline.db');
    copyFileSync(path, copy);

    const store = new Store({ path, busyTimeoutMs: 5000, cacheSizeMiB: 64, checkpointPages: 1_000_000 });
    store.open();
    const rawRows = count(store.db, 'samples');
    const minuteRows = count(store.db, 'samples_1m');
    const accountingRows = count(store.db, 'accounting');
    const phases = new Map<RetentionPhase['phase'], RetentionPhase>();
    const add = (phase: RetentionPhase['phase'], rows: number, ms: number) => {
      const p = phases.get(phase) ?? { phase, rows, chunks: 0, totalMs: 0, longestMs: 0 };
      p.chunks++;
      p.totalMs += ms;
      p.longestMs = Math.max(p.longestMs, ms);
      phases.set(phase, p);
    };
    const pacer = new RetentionPacer(parseConfig('', 'defaults').retention.chunk_target_ms);
    for (let i = 0; i < 1_000_000; i++) {
      const before = { raw: count(store.db, 'samples'), m: count(store.db, 'samples_1m') };
      const t0 = performance.now();
      const p = runRetentionStep(store, { ...OPTIONS, slices: pacer.slices }, nowMs, 1);
      const ms = performance.now() - t0;
      pacer.observe(p.lastPhase, ms);
      if (p.done) break;
      if (count(store.db, 'samples') < before.raw) add('raw → 1 minute', rawRows, ms);
      else if (p.accountingRowsFolded > 0) add('accounting compaction', accountingRows, ms);
      else if (p.minuteRowsFolded > 0 || count(store.db, 'samples_1m') < before.m)
        add('1 minute → 1 hour', minuteRows, ms);
    }
    const accountingAfter = count(store.db, 'accounting');
    store.close();
    const base = baseline(copy, nowMs);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const raw = phases.get('raw → 1 minute');
    if (raw) Object.assign(raw, { baselineLongestMs: Math.max(...base.raw), baselineTotalMs: sum(base.raw) });
    const minute = phases.get('1 minute → 1 hour');
    if (minute)
      Object.assign(minute, { baselineLongestMs: Math.max(...base.minute), baselineTotalMs: sum(base.minute) });
    const acct = phases.get('accounting compaction');
    if (acct) acct.rowsAfter = accountingAfter;
    const result = { rigs, phases: [...phases.values()] };
    for (const p of result.phases)
      log(
        `retention: ${p.phase} ${p.rows} rows in ${p.chunks} chunks, ${p.totalMs.toFixed(0)} ms, longest ${p.longestMs.toFixed(0)} ms` +
          (p.baselineLongestMs !== undefined ? ` (one transaction: longest ${p.baselineLongestMs.toFixed(0)} ms)` : ''),
      );
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
