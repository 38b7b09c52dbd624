/**
 * Accounting compaction. The diagnosis writes one accounting row per rig per report interval
 * (8,640 a day at 10 s) and attribution reads them until `drop_after_days` (400): kept at that
 * resolution, accounting was most of a rig's settled database (BENCHMARKS.md, Fleet). Past
 * `raw_days` the retention merges a rig's consecutive rows of one state that start in the same
 * clock hour into one `folded` row: deficit and energy summed, expected and actual hashrate
 * averaged over time. Attribution already counts a row cut by its window pro rata, so totals stay
 * exact over any window whose edges fall on a state change or a clock hour, and within one hour
 * otherwise the deficit is spread evenly over the run.
 *
 * The diagnosis may still write into a folded stretch later (a silence gap relabelled by a spool
 * replayed days after, a long-interval agent): such a row first carves its time out of the folded
 * row, pro rata, so no interval is counted twice and none is lost.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { readMark, writeMark } from './marks.js';
import { perConnection } from './statements.js';

const HOUR_MS = 3_600_000;

/**
 * Longest span one accounting row covers: a run of rows starting in one clock hour ends at most one
 * interval (≤ 1 h, the longest agent interval) past it. Range queries look back this far.
 */
export const MAX_ROW_SPAN_MS = 2 * HOUR_MS;

interface Row {
  ts: number;
  duration_ms: number;
  site_id: number;
  state: string;
  cause: string;
  expected_hs: number;
  actual_hs: number;
  deficit_hashes: number;
  energy_j: number | null;
  folded: number;
}

type RawRow = [number, number, number, string, string, number, number, number, number | null, number];

function fromRaw(r: RawRow): Row {
  return {
    ts: r[0],
    duration_ms: r[1],
    site_id: r[2],
    state: r[3],
    cause: r[4],
    expected_hs: r[5],
    actual_hs: r[6],
    deficit_hashes: r[7],
    energy_j: r[8],
    folded: r[9],
  };
}

type Statements = ReturnType<typeof stmts>;

const stmts = perConnection((db) => {
  return {
    // Arrays, not objects: half the time of the fold's read (~1.6 against ~3.5 µs a row here).
    hourRows: db
      .prepare<[number, number, number], RawRow>(
        `SELECT ts, duration_ms, site_id, state, cause, expected_hs, actual_hs, deficit_hashes, energy_j, folded
         FROM accounting WHERE rig_id = ? AND ts >= ? AND ts < ? ORDER BY ts`,
      )
      .raw(true),
    overlapping: db.prepare<[number, number, number, number], Row>(
      `SELECT ts, duration_ms, site_id, state, cause, expected_hs, actual_hs, deficit_hashes, energy_j, folded
       FROM accounting WHERE rig_id = ? AND ts > ? AND ts < ? AND folded = 1 AND ts + duration_ms > ?`,
    ),
    deleteRange: db.prepare<[number, number, number]>('DELETE FROM accounting WHERE rig_id = ? AND ts >= ? AND ts < ?'),
    deleteAt: db.prepare<[number, number]>('DELETE FROM accounting WHERE rig_id = ? AND ts = ?'),
    insertFolded: db.prepare<[number, number, number, number, string, string, number, number, number, number | null]>(
      `INSERT INTO accounting (rig_id, site_id, ts, duration_ms, state, cause, expected_hs, actual_hs, deficit_hashes, energy_j, folded)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
       ON CONFLICT (rig_id, ts) DO UPDATE SET site_id = excluded.site_id, duration_ms = excluded.duration_ms,
         state = excluded.state, cause = excluded.cause, expected_hs = excluded.expected_hs,
         actual_hs = excluded.actual_hs, deficit_hashes = excluded.deficit_hashes, energy_j = excluded.energy_j, folded = 1`,
    ),
    firstRowFrom: db.prepare<[number], { ts: number | null }>('SELECT MIN(ts) AS ts FROM accounting WHERE ts >= ?'),
    rigsAfter: db.prepare<[number, number], { id: number }>('SELECT id FROM rigs WHERE id > ? ORDER BY id LIMIT ?'),
  };
});

/** Rows of one run merge when they follow each other within half an interval (report jitter). */
function continues(run: Row, next: Row, runEnd: number): boolean {
  return (
    run.folded === 0 &&
    next.folded === 0 &&
    next.state === run.state &&
    next.cause === run.cause &&
    next.site_id === run.site_id &&
    Math.abs(next.ts - runEnd) <= next.duration_ms / 2
  );
}

/**
 * Merges one rig's rows starting in [hourMs, hourMs + 1 h) into runs. Folded rows (already merged,
 * or pieces left by a carve) stay as they are and end a run. Returns the rows read.
 */
export function foldRigHour(db: BetterSqlite3.Database, rigId: number, hourMs: number): number {
  const s = stmts(db);
  const raw = s.hourRows.all(rigId, hourMs, hourMs + HOUR_MS);
  if (raw.length < 2) return raw.length;
  const rows = raw.map(fromRaw);
  const runs: Row[][] = [];
  let run: Row[] = [];
  let runEnd = 0;
  for (const row of rows) {
    const head = run[0];
    if (head && continues(head, row, runEnd)) run.push(row);
    else {
      if (run.length > 0) runs.push(run);
      run = [row];
    }
    runEnd = row.ts + row.duration_ms;
  }
  runs.push(run);
  if (runs.length === rows.length) return rows.length; // nothing merges
  s.deleteRange.run(rigId, hourMs, hourMs + HOUR_MS);
  for (const r of runs) {
    const first = r[0] as Row;
    const last = r[r.length - 1] as Row;
    if (r.length === 1 && first.folded === 1) {
      insert(s, rigId, first, first.ts, first.duration_ms, 1);
      continue;
    }
    let covered = 0;
    let expected = 0;
    let actual = 0;
    let deficit = 0;
    let energy: number | null = null;
    for (const x of r) {
      covered += x.duration_ms;
      expected += x.expected_hs * x.duration_ms;
      actual += x.actual_hs * x.duration_ms;
      deficit += x.deficit_hashes;
      if (x.energy_j !== null) energy = (energy ?? 0) + x.energy_j;
    }
    // The run covers first start to last end; its figures are time-weighted over what was reported.
    const span = last.ts + last.duration_ms - first.ts;
    s.insertFolded.run(
      rigId,
      first.site_id,
      first.ts,
      span,
      first.state,
      first.cause,
      covered > 0 ? expected / covered : first.expected_hs,
      covered > 0 ? actual / covered : first.actual_hs,
      deficit,
      energy,
    );
  }
  return rows.length;
}

function insert(s: Statements, rigId: number, row: Row, ts: number, durationMs: number, share: number): void {
  s.insertFolded.run(
    rigId,
    row.site_id,
    ts,
    durationMs,
    row.state,
    row.cause,
    row.expected_hs,
    row.actual_hs,
    row.deficit_hashes * share,
    row.energy_j === null ? null : row.energy_j * share,
  );
}

/**
 * Removes [fromMs, toMs) from the folded rows of one rig that overlap it, keeping the parts before
 * and after with their share of the deficit and energy. Rows not folded are left alone: the
 * diagnosis retracts and replaces those by their start (Store `applyDiagnosis`).
 */
export function carveFolded(db: BetterSqlite3.Database, rigId: number, fromMs: number, toMs: number): void {
  if (toMs <= fromMs) return;
  const s = stmts(db);
  for (const row of s.overlapping.all(rigId, fromMs - MAX_ROW_SPAN_MS, toMs, fromMs)) {
    const end = row.ts + row.duration_ms;
    const span = Math.max(row.duration_ms, 1);
    s.deleteAt.run(rigId, row.ts);
    if (row.ts < fromMs) insert(s, rigId, row, row.ts, fromMs - row.ts, (fromMs - row.ts) / span);
    if (end > toMs) insert(s, rigId, row, toMs, end - toMs, (end - toMs) / span);
  }
}

const MARK_HOUR = 'accounting_fold_hour';
const MARK_RIG = 'accounting_fold_rig';

/**
 * Where the compaction stands: every hour before `hourMs` is folded, and in that hour every rig up
 * to `rigId`. `undefined` before the first step.
 */
export function foldMark(db: BetterSqlite3.Database): { hourMs: number; rigId: number } | undefined {
  const hour = readMark(db, MARK_HOUR);
  if (hour === undefined) return undefined;
  return { hourMs: hour, rigId: readMark(db, MARK_RIG) ?? 0 };
}

/**
 * One chunk of compaction, in one transaction with its mark (a crash repeats nothing and skips
 * nothing): the oldest unfolded hour for the next `rigsPerChunk` rigs. Only hours that end before
 * `cutoffMs` are folded. Returns the rows read, or -1 when nothing is left before the cutoff.
 */
export function foldAccountingChunk(db: BetterSqlite3.Database, cutoffMs: number, rigsPerChunk: number): number {
  const s = stmts(db);
  let mark = foldMark(db) ?? { hourMs: 0, rigId: 0 };
  if (mark.rigId === 0) {
    // A new hour: the next one that has rows, so an empty stretch (a collector down for days) costs
    // one query, not a walk over every rig for each of its hours.
    const next = s.firstRowFrom.get(mark.hourMs)?.ts ?? null;
    if (next === null) return -1;
    mark = { hourMs: Math.max(mark.hourMs, Math.floor(next / HOUR_MS) * HOUR_MS), rigId: 0 };
  }
  if (mark.hourMs + HOUR_MS > cutoffMs) return -1;
  const { hourMs, rigId } = mark;
  const rigs = s.rigsAfter.all(rigId, rigsPerChunk);
  return db.transaction(() => {
    let read = 0;
    for (const { id } of rigs) read += foldRigHour(db, id, hourMs);
    const last = rigs[rigs.length - 1];
    const hourDone = rigs.length < rigsPerChunk || last === undefined;
    writeMark(db, MARK_HOUR, hourDone ? hourMs + HOUR_MS : hourMs);
    writeMark(db, MARK_RIG, hourDone ? 0 : last.id);
    return read;
  })();
}

/**
 * Rows starting before this may lie in a folded stretch: a write there must carve (`carveFolded`).
 * The hour being folded counts whole. 0 before the compaction has started.
 */
export function foldedBefore(db: BetterSqlite3.Database): number {
  const mark = foldMark(db);
  return mark ? mark.hourMs + HOUR_MS : 0;
}
