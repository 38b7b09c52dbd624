/**
 * Single-threaded ceilings measured in the bench process, for the same rows the end-to-end ingest
 * run stores: raw better-sqlite3 batched inserts through the collector's own schema (no MQTT, no
 * validation), the collector's Store.commitReports, and protocol decode (JSON.parse + ajv).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode, type Report, type RigSample } from '@hashwatch/protocol';
import Database from 'better-sqlite3';
import { migrate } from '../../../collector/src/store/schema.js';
import { type PendingReport, Store, sampleColumns } from '../../../collector/src/store/store.js';
import { ReportTemplate } from '../../fleet/payload.js';

/** Samples per transaction for the ceilings: enough that the fsync per commit is amortised. */
const BATCH_SAMPLES = 10_000;
const COLUMNS = 17;
const ROWS_PER_INSERT = 50;

function tempDb(): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hw-bench-raw-'));
  return { dir, path: join(dir, 'raw.db') };
}

/** Raw ceiling: rig samples/s of batched multi-row INSERTs into `samples` (+ one `reports` row each). */
export function rawInsertRate(shape: RigSample, rigs: number, totalSamples: number): number {
  const { dir, path } = tempDb();
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('cache_size = -65536');
    migrate(db);
    const c = sampleColumns(shape);
    const values = [
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
    ];
    const one = `(${new Array(COLUMNS).fill('?').join(',')})`;
    const multi = new Map<number, Database.Statement>();
    const insertRows = (n: number) => {
      let s = multi.get(n);
      if (!s) {
        s = db.prepare(
          `INSERT INTO samples (rig_id, ts, report_id, reachable, hashrate_hs, power_w, temp_max_c, fan_min_rpm,
            boards_ok, boards_total, accepted, rejected, stale, hw_errors, pool_ok, error_kind, flags)
           VALUES ${new Array(n).fill(one).join(',')}`,
        );
        multi.set(n, s);
      }
      return s;
    };
    const insertReport = db.prepare(
      `INSERT INTO reports (host_id, boot_id, seq, ts, received_ms, historical, skew_ms, skewed, rig_count, agent_json)
       VALUES (?, 'bench-boot', ?, ?, ?, 0, 0, 0, ?, NULL)`,
    );
    const reportsPerBatch = Math.max(1, Math.floor(BATCH_SAMPLES / rigs));
    let seq = 0;
    const t0 = performance.now();
    let written = 0;
    while (written < totalSamples) {
      const tsBase = Date.now();
      db.transaction(() => {
        for (let r = 0; r < reportsPerBatch; r++) {
          const ts = tsBase + r;
          const reportId = Number(insertReport.run(1, seq++, ts, ts, rigs).lastInsertRowid);
          for (let first = 0; first < rigs; first += ROWS_PER_INSERT) {
            const n = Math.min(ROWS_PER_INSERT, rigs - first);
            const params: Array<number | string | null> = [];
            for (let k = 0; k < n; k++) params.push(first + k + 1, ts, reportId, ...values);
            insertRows(n).run(params);
          }
          written += rigs;
        }
      })();
    }
    return written / ((performance.now() - t0) / 1000);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The collector's Store.commitReports on decoded reports (sampleColumns, reports, probes, latest). */
export function storeCommitRate(shape: RigSample, rigs: number, totalSamples: number): number {
  const { dir, path } = tempDb();
  const store = new Store({ path, busyTimeoutMs: 5000, cacheSizeMiB: 64, checkpointPages: 10_000 });
  try {
    store.open();
    const ref = store.ensureHost('bench', 'h0', Date.now());
    const template = new ReportTemplate(shape, rigs, 'bench-boot-1', 10_000);
    const reportsPerBatch = Math.max(1, Math.floor(BATCH_SAMPLES / rigs));
    let seq = 0;
    let written = 0;
    let elapsedMs = 0;
    while (written < totalSamples) {
      const now = Date.now();
      const batch: PendingReport[] = [];
      for (let r = 0; r < reportsPerBatch; r++) {
        const report = JSON.parse(template.render(seq++, now + r)) as Report;
        batch.push({
          site: 'bench',
          host: 'h0',
          hostId: ref.hostId,
          report,
          receivedMs: now,
          skewMs: 0,
          skewed: false,
        });
      }
      const t0 = performance.now();
      written += store.commitReports(batch).samplesWritten;
      elapsedMs += performance.now() - t0;
      store.maybeCheckpoint();
    }
    return written / (elapsedMs / 1000);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Protocol decode (size check, JSON.parse, ajv, timestamp and uniqueness checks): rig samples/s. */
export function decodeRate(shape: RigSample, rigs: number, totalSamples: number): number {
  const template = new ReportTemplate(shape, rigs, 'bench-boot-1', 10_000);
  const now = Date.now();
  const payloads = Array.from({ length: 16 }, (_, i) => Buffer.from(template.render(i, now)));
  const reports = Math.max(1, Math.ceil(totalSamples / rigs));
  const t0 = performance.now();
  for (let i = 0; i < reports; i++) {
    const r = decode('report', payloads[i % payloads.length] as Buffer, now);
    if (!r.ok) throw new Error(`decode failed: ${r.error.message}`);
  }
  return (reports * rigs) / ((performance.now() - t0) / 1000);
}
