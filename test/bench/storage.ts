/**
 * What a fleet's database costs on disk per rig: each table's bytes (with its indexes) per rig-day
 * as ingest and the diagnosis write them, and the size one rig's history settles at under the
 * default retention. The settled size is not extrapolated from row counts alone: the collector's
 * own retention (`runRetentionStep`) runs over a copy of the database with the clock moved past
 * each tier, and the tiers' rows are measured as SQLite stores them.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../../collector/src/config.js';
import { stateFilePath } from '../../collector/src/diagnosis/state-file.js';
import { runRetentionStep } from '../../collector/src/store/retention.js';
import { Store } from '../../collector/src/store/store.js';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** The row of the tables list that stands for the diagnosis memory's file. */
const DIAGNOSIS_FILE = 'diagnosis memory (file)';

export interface TableBytes {
  table: string;
  rows: number;
  /** Pages of the table and its indexes. */
  bytes: number;
  bytesPerRigDay: number;
}

export interface StorageResult {
  rigs: number;
  /** Time the stored samples span (first to last, plus one interval). */
  spanMs: number;
  tables: TableBytes[];
  retention: { rawDays: number; minuteDays: number; dropAfterDays: number };
  /** Bytes per stored row of each tier, after the retention folded the raw rows into it. */
  minuteBytesPerRow: number;
  hourBytesPerRow: number;
  /** Accounting after the retention compacted it: rows per rig and clock hour, bytes per row. */
  accountingFoldedRowsPerRigHour: number;
  accountingFoldedBytesPerRow: number;
  /** One rig's settled size under the default retention, by part. */
  settled: Array<{ part: string; bytesPerRig: number }>;
  settledBytesPerRig: number;
  /** The same with accounting kept at full resolution until it is dropped (no compaction). */
  settledUncompactedBytesPerRig: number;
}

function tableBytes(db: Database.Database): Map<string, { bytes: number; rows: number }> {
  const out = new Map<string, { bytes: number; rows: number }>();
  const pages = db
    .prepare(
      `SELECT s.tbl_name AS t, SUM(d.pgsize) AS bytes FROM dbstat d JOIN sqlite_schema s ON s.name = d.name
       WHERE s.tbl_name NOT LIKE 'sqlite_%' GROUP BY s.tbl_name`,
    )
    .all() as Array<{ t: string; bytes: number }>;
  for (const { t, bytes } of pages) {
    const rows = (db.prepare(`SELECT count(*) AS n FROM "${t}"`).get() as { n: number }).n;
    out.set(t, { bytes, rows });
  }
  return out;
}

function retentionDefaults() {
  const r = loadConfig(undefined, {}).retention;
  return { rawDays: r.raw_days, minuteDays: r.minute_days, dropAfterDays: r.drop_after_days, chunkRows: r.chunk_rows };
}

function retainUntilDone(store: Store, options: ReturnType<typeof retentionDefaults>, nowMs: number): void {
  for (let i = 0; i < 1_000_000; i++) if (runRetentionStep(store, options, nowMs, 1000).done) return;
  throw new Error('retention did not finish on the copy of the fleet database');
}

/** Measures the database at `dbPath` (closed by its writer), written by `rigs` rigs. */
export function measureStorage(dbPath: string, rigs: number): StorageResult {
  const retention = retentionDefaults();
  const dir = mkdtempSync(join(tmpdir(), 'hw-bench-storage-'));
  try {
    const db = new Database(dbPath, { readonly: true });
    const span = db.prepare('SELECT MIN(ts) AS lo, MAX(ts) AS hi, COUNT(*) AS n FROM samples').get() as {
      lo: number;
      hi: number;
      n: number;
    };
    // One interval past the last sample: a rig's n samples cover n intervals.
    const spanMs = span.n > rigs ? ((span.hi - span.lo) * span.n) / (span.n - rigs) : 0;
    const rigDays = (rigs * spanMs) / DAY_MS;
    const asWritten = tableBytes(db);
    db.close();
    // The diagnosis memory lives in a file beside the database: counted as one more "table".
    const stateFile = stateFilePath(dbPath);
    if (existsSync(stateFile)) asWritten.set(DIAGNOSIS_FILE, { bytes: statSync(stateFile).size, rows: 1 });
    const tables = [...asWritten.entries()]
      .map(([table, v]) => ({ table, ...v, bytesPerRigDay: rigDays > 0 ? v.bytes / rigDays : 0 }))
      .sort((a, b) => b.bytes - a.bytes);

    // The copy goes through the tiers: past raw_days (raw → 1 minute, accounting compacted), then
    // past minute_days (1 minute → 1 hour). Nothing is old enough to be dropped in either step.
    const copy = join(dir, 'copy.db');
    for (const suffix of ['', '-wal']) if (existsSync(dbPath + suffix)) copyFileSync(dbPath + suffix, copy + suffix);
    const store = new Store({ path: copy, busyTimeoutMs: 5000, cacheSizeMiB: 64, checkpointPages: 100_000 });
    store.open();
    retainUntilDone(store, retention, span.hi + retention.rawDays * DAY_MS + 2 * HOUR_MS);
    const afterRaw = tableBytes(store.db);
    const rigHours = (
      store.db.prepare('SELECT COUNT(*) AS n FROM (SELECT DISTINCT rig_id, ts / 3600000 FROM accounting)').get() as {
        n: number;
      }
    ).n;
    retainUntilDone(store, retention, span.hi + retention.minuteDays * DAY_MS + 2 * HOUR_MS);
    const afterMinute = tableBytes(store.db);
    store.close();

    const perRow = (t: { bytes: number; rows: number } | undefined) => (t && t.rows > 0 ? t.bytes / t.rows : 0);
    const perRigDay = (name: string) => tables.find((t) => t.table === name)?.bytesPerRigDay ?? 0;
    const minuteBytesPerRow = perRow(afterRaw.get('samples_1m'));
    const hourBytesPerRow = perRow(afterMinute.get('samples_1h'));
    const folded = afterRaw.get('accounting');
    const accountingFoldedBytesPerRow = perRow(folded);
    const accountingFoldedRowsPerRigHour = folded && rigHours > 0 ? folded.rows / rigHours : 0;
    const { rawDays, minuteDays, dropAfterDays } = retention;
    const tiered = new Set(['samples', 'samples_1m', 'samples_1h', 'probe_results', 'reports', 'accounting']);
    const settled = [
      { part: `raw samples, ${rawDays} days`, bytesPerRig: perRigDay('samples') * rawDays },
      { part: `probe results, ${rawDays} days`, bytesPerRig: perRigDay('probe_results') * rawDays },
      {
        part: `1-minute samples, ${minuteDays - rawDays} days`,
        bytesPerRig: minuteBytesPerRow * 1440 * (minuteDays - rawDays),
      },
      {
        part: `1-hour samples, ${dropAfterDays - minuteDays} days`,
        bytesPerRig: hourBytesPerRow * 24 * (dropAfterDays - minuteDays),
      },
      { part: `reports, ${dropAfterDays} days`, bytesPerRig: perRigDay('reports') * dropAfterDays },
      {
        part: `accounting, ${rawDays} days per interval then ${dropAfterDays - rawDays} days compacted`,
        bytesPerRig:
          perRigDay('accounting') * rawDays +
          accountingFoldedBytesPerRow * accountingFoldedRowsPerRigHour * 24 * (dropAfterDays - rawDays),
      },
      {
        part: 'inventory, states, incidents, diagnosis memory (as written)',
        bytesPerRig: tables.filter((t) => !tiered.has(t.table)).reduce((n, t) => n + t.bytes, 0) / rigs,
      },
    ];
    const settledBytesPerRig = settled.reduce((n, p) => n + p.bytesPerRig, 0);
    const accountingPart = settled[5]?.bytesPerRig ?? 0;
    return {
      rigs,
      spanMs,
      tables,
      retention: { rawDays, minuteDays, dropAfterDays },
      minuteBytesPerRow,
      hourBytesPerRow,
      accountingFoldedRowsPerRigHour,
      accountingFoldedBytesPerRow,
      settled,
      settledBytesPerRig,
      settledUncompactedBytesPerRig: settledBytesPerRig - accountingPart + perRigDay('accounting') * dropAfterDays,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
