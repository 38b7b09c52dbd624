import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AccountingRow, Outcome, State } from '@hashwatch/diagnosis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldMark } from './accounting.js';
import { applyDiagnosis } from './diagnosis.js';
import { attribution } from './queries.js';
import { DEFAULT_SLICES, type RetentionOptions, runRetentionStep } from './retention.js';
import { Store } from './store.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const STEP = 10_000;
// Two days after a whole hour, so the retention cutoff (raw_days = 1) falls on hour edges.
const NOW = Date.UTC(2026, 5, 10, 12);
const T0 = NOW - 2 * DAY;
const OPTS: RetentionOptions = { rawDays: 1, minuteDays: 3, dropAfterDays: 30, chunkRows: 1000 };

let dir: string;
let store: Store;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hw-accounting-'));
  store = new Store({ path: path.join(dir, 'hw.db'), busyTimeoutMs: 200, cacheSizeMiB: 8, checkpointPages: 1000 });
  store.open();
});

afterEach(() => {
  store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function row(rig: string, ts: number, state: State, deficit: number, energy: number | null = 50): AccountingRow {
  return {
    site: 'farm-a',
    host: 'host-1',
    rig,
    ts,
    duration_ms: STEP,
    state,
    expected_hs: 100,
    actual_hs: 100 - deficit / 10,
    deficit_hashes: deficit,
    energy_j: energy,
  };
}

function outcome(rows: AccountingRow[], retractions: Outcome['retractions'] = []): Outcome {
  return { changes: [], incidents: [], retractions, rows };
}

/** What a rig's rows add up to, straight from the table. */
function totals(rig: string) {
  return store.db
    .prepare(
      `SELECT COUNT(*) AS rows, SUM(a.duration_ms) AS ms, SUM(a.deficit_hashes) AS deficit, SUM(a.energy_j) AS energy,
              SUM(a.expected_hs * a.duration_ms) AS expectedHsMs, SUM(a.actual_hs * a.duration_ms) AS actualHsMs
       FROM accounting a JOIN rigs r ON r.id = a.rig_id WHERE r.name = ?`,
    )
    .get(rig) as {
    rows: number;
    ms: number;
    deficit: number;
    energy: number;
    expectedHsMs: number;
    actualHsMs: number;
  };
}

function rowsOf(rig: string) {
  return store.db
    .prepare(
      `SELECT a.ts, a.duration_ms, a.state, a.deficit_hashes, a.energy_j, a.folded FROM accounting a
       JOIN rigs r ON r.id = a.rig_id WHERE r.name = ? ORDER BY a.ts`,
    )
    .all(rig) as Array<{
    ts: number;
    duration_ms: number;
    state: string;
    deficit_hashes: number;
    energy_j: number | null;
    folded: number;
  }>;
}

function retainAll(nowMs = NOW): void {
  for (let i = 0; i < 10_000; i++) if (runRetentionStep(store, OPTS, nowMs, 5).done) return;
  throw new Error('retention did not finish');
}

/** Two hours of rig-01 at 10 s: ok, then a 20-minute hardware fault from 00:30, then ok again. */
function writeTwoHours(rig = 'rig-01'): void {
  const rows: AccountingRow[] = [];
  for (let ts = T0; ts < T0 + 2 * HOUR; ts += STEP) {
    const fault = ts >= T0 + 30 * 60_000 && ts < T0 + 50 * 60_000;
    // jitter of a real agent: reports a few ms late, intervals still contiguous enough
    const jitter = (ts / STEP) % 3;
    rows.push(row(rig, ts + jitter, fault ? 'hardware_fault' : 'ok', fault ? 1000 : 0, fault ? null : 50));
  }
  applyDiagnosis(store, outcome(rows), NOW);
}

describe('accounting compaction', () => {
  it('merges each run of one state in a clock hour, keeping every sum and attribution', () => {
    writeTwoHours();
    const before = totals('rig-01');
    const attrBefore = attribution(store, { fromMs: T0, toMs: T0 + 2 * HOUR });
    const faultBefore = attribution(store, { fromMs: T0 + 30 * 60_000, toMs: T0 + 50 * 60_000 });
    expect(before.rows).toBe(720);
    retainAll();
    const after = totals('rig-01');
    // hour 1: ok, fault, ok; hour 2: ok
    expect(rowsOf('rig-01').map((r) => [r.state, r.folded])).toEqual([
      ['ok', 1],
      ['hardware_fault', 1],
      ['ok', 1],
      ['ok', 1],
    ]);
    expect(after.deficit).toBe(before.deficit);
    expect(after.energy).toBe(before.energy);
    // time-weighted means over a span that also covers the agent's few ms of jitter
    expect(after.expectedHsMs / before.expectedHsMs).toBeCloseTo(1, 5);
    expect(after.actualHsMs / before.actualHsMs).toBeCloseTo(1, 5);
    // the run spans from its first start to its last end (jitter included), never less
    expect(after.ms).toBeGreaterThanOrEqual(before.ms);
    expect(after.ms - before.ms).toBeLessThanOrEqual(4 * 3);
    expect(attribution(store, { fromMs: T0, toMs: T0 + 2 * HOUR })).toEqual(attrBefore);
    const fault = attribution(store, { fromMs: T0 + 30 * 60_000, toMs: T0 + 50 * 60_000 });
    expect(fault.total_deficit_hashes).toBeCloseTo(faultBefore.total_deficit_hashes, 0);
    // a run with no power figure at all keeps none; one with figures keeps their sum
    const rows = rowsOf('rig-01');
    expect(rows[1]?.energy_j).toBeNull();
    expect(rows[0]?.energy_j).toBe(180 * 50);
  });

  it('leaves rows younger than raw_days alone and repeats nothing when run again', () => {
    writeTwoHours();
    // Only the first hour is a whole hour older than the cutoff.
    retainAll(T0 + DAY + HOUR + 5 * 60_000);
    const rows = rowsOf('rig-01');
    expect(rows.filter((r) => r.ts < T0 + HOUR).length).toBe(3);
    expect(rows.filter((r) => r.ts >= T0 + HOUR).every((r) => r.folded === 0)).toBe(true);
    expect(foldMark(store.db)).toEqual({ hourMs: T0 + HOUR, rigId: 0 });
    const once = rowsOf('rig-01');
    retainAll(T0 + DAY + HOUR + 5 * 60_000);
    expect(rowsOf('rig-01')).toEqual(once);
  });

  it('goes through many rigs in chunks that resume from their mark', () => {
    const rigs = DEFAULT_SLICES.accountingRigs + 30;
    const rows: AccountingRow[] = [];
    for (let k = 0; k < rigs; k++)
      for (let ts = T0; ts < T0 + 10 * 60_000; ts += STEP) rows.push(row(`rig-${k}`, ts, 'ok', 0));
    applyDiagnosis(store, outcome(rows), NOW);
    // One chunk per step: the first hour's first slice of rigs, then the rest.
    const first = runRetentionStep(store, OPTS, NOW, 1);
    expect(first.done).toBe(false);
    expect(first.accountingRowsFolded).toBe(DEFAULT_SLICES.accountingRigs * 60);
    expect(foldMark(store.db)?.rigId).toBeGreaterThan(0);
    retainAll();
    const perRig = store.db.prepare('SELECT COUNT(*) AS n FROM accounting GROUP BY rig_id').all() as { n: number }[];
    expect(perRig).toHaveLength(rigs);
    expect(perRig.every((r) => r.n === 1)).toBe(true);
  });

  it('folds as many rigs per chunk as the slice it is given, and the same totals', () => {
    const rigs = 17;
    const rows: AccountingRow[] = [];
    for (let k = 0; k < rigs; k++)
      for (let ts = T0; ts < T0 + 10 * 60_000; ts += STEP) rows.push(row(`rig-${k}`, ts, 'ok', 0));
    applyDiagnosis(store, outcome(rows), NOW);
    const before = totals('rig-3');
    const slices = { accountingRigs: 7 };
    const first = runRetentionStep(store, { ...OPTS, slices }, NOW, 1);
    expect(first.lastPhase).toBe('accounting');
    expect(first.accountingRowsFolded).toBe(7 * 60);
    const second = runRetentionStep(store, { ...OPTS, slices }, NOW, 1);
    expect(second.accountingRowsFolded).toBe(7 * 60);
    const third = runRetentionStep(store, { ...OPTS, slices }, NOW, 1);
    expect(third.accountingRowsFolded).toBe(3 * 60);
    expect(foldMark(store.db)?.rigId).toBe(0);
    expect(totals('rig-3')).toEqual({ ...before, rows: 1 });
  });

  it('carves a relabelled slot out of a compacted run, pro rata, counting nothing twice', () => {
    writeTwoHours();
    retainAll();
    const before = totals('rig-01');
    const run = rowsOf('rig-01')[0] as { duration_ms: number; energy_j: number };
    // What the diagnosis does when a spooled report relabels a gap slot: retract the slot by its
    // start, write the new row in its place. Here 5 minutes into the first ok run.
    const slot = T0 + 5 * 60_000;
    applyDiagnosis(
      store,
      outcome(
        [row('rig-01', slot, 'power_loss', 1000, 0)],
        [{ site: 'farm-a', host: 'host-1', rig: 'rig-01', fromMs: slot, toMs: slot + 1 }],
      ),
      NOW,
    );
    const rows = rowsOf('rig-01');
    expect(rows.slice(0, 3).map((r) => [r.ts, r.duration_ms, r.state, r.folded])).toEqual([
      [T0, 5 * 60_000, 'ok', 1],
      [slot, STEP, 'power_loss', 0],
      [slot + STEP, run.duration_ms - 5 * 60_000 - STEP, 'ok', 1],
    ]);
    const after = totals('rig-01');
    expect(after.ms).toBe(before.ms);
    expect(after.deficit).toBe(before.deficit + 1000);
    // the ok run gave up one interval's share of its energy; the new row brought 0 J
    expect(after.energy).toBeCloseTo(before.energy - (run.energy_j * STEP) / run.duration_ms, 6);
  });

  it('carves a late row with no retraction too, and a row at a compacted run start', () => {
    writeTwoHours();
    retainAll();
    const before = totals('rig-01');
    applyDiagnosis(store, outcome([row('rig-01', T0, 'unknown', 1000, null)]), NOW);
    const rows = rowsOf('rig-01');
    expect(rows[0]).toMatchObject({ ts: T0, duration_ms: STEP, state: 'unknown', folded: 0 });
    expect(rows[1]).toMatchObject({ ts: T0 + STEP, state: 'ok', folded: 1 });
    expect(totals('rig-01').ms).toBe(before.ms);
    expect(totals('rig-01').rows).toBe(before.rows + 1);
  });
});
