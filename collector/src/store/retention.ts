/**
 * Retention by age, with downsampling: raw samples → 1-minute sums after `rawDays`, 1-minute →
 * 1-hour after `minuteDays`, everything dropped after `dropAfterDays`. Work is done in small
 * chunks (one 10-minute sample bucket, or `chunkRows` rows, per transaction) so a commit of
 * ingest never waits long behind it. `runRetentionStep` is pure in time: `nowMs` is an argument.
 */
import type { Store } from './store.js';

export interface RetentionOptions {
  /** Keep raw samples (and probe results) this long, then fold them into 1-minute rows. */
  rawDays: number;
  /** Keep 1-minute rows this long, then fold them into 1-hour rows. */
  minuteDays: number;
  /** Drop everything older than this (1-hour rows, reports, incidents, accounting). */
  dropAfterDays: number;
  /** Rows deleted per transaction in the drop phases. */
  chunkRows: number;
}

const DAY_MS = 86_400_000;
const BUCKET_MS = 600_000;

export interface RetentionProgress {
  /** Raw 10-minute buckets folded into 1-minute rows. */
  rawBuckets: number;
  minuteRowsFolded: number;
  rowsDropped: number;
  /** False when there is more to do than this step did. */
  done: boolean;
}

function foldInto(target: 'samples_1m' | 'samples_1h'): string {
  return `ON CONFLICT (rig_id, ts) DO UPDATE SET
    n = ${target}.n + excluded.n,
    reachable_n = ${target}.reachable_n + excluded.reachable_n,
    hashrate_sum_hs = COALESCE(${target}.hashrate_sum_hs, 0) + COALESCE(excluded.hashrate_sum_hs, 0),
    hashrate_n = ${target}.hashrate_n + excluded.hashrate_n,
    power_sum_w = COALESCE(${target}.power_sum_w, 0) + COALESCE(excluded.power_sum_w, 0),
    power_n = ${target}.power_n + excluded.power_n,
    temp_max_c = MAX(COALESCE(${target}.temp_max_c, excluded.temp_max_c), COALESCE(excluded.temp_max_c, ${target}.temp_max_c)),
    fan_min_rpm = MIN(COALESCE(${target}.fan_min_rpm, excluded.fan_min_rpm), COALESCE(excluded.fan_min_rpm, ${target}.fan_min_rpm))`;
}

/**
 * Does at most `maxChunks` chunks of retention work, oldest first. Call repeatedly (a timer) until
 * `done`. Raw samples of one 10-minute bucket fold and delete in the same transaction, so a crash
 * never loses or double-counts them.
 */
export function runRetentionStep(
  store: Store,
  options: RetentionOptions,
  nowMs: number,
  maxChunks: number,
): RetentionProgress {
  const db = store.db;
  const rawCutoff = nowMs - options.rawDays * DAY_MS;
  const minuteCutoff = nowMs - options.minuteDays * DAY_MS;
  const dropCutoff = nowMs - options.dropAfterDays * DAY_MS;
  const progress: RetentionProgress = { rawBuckets: 0, minuteRowsFolded: 0, rowsDropped: 0, done: true };
  let chunks = 0;

  const oldestBucket = db.prepare<[], { b: number | null }>('SELECT MIN(ts / 600000) AS b FROM samples');
  const foldRaw = db.prepare(
    `INSERT INTO samples_1m (rig_id, ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm)
     SELECT rig_id, (ts / 60000) * 60000, COUNT(*), SUM(reachable), SUM(hashrate_hs), COUNT(hashrate_hs),
            SUM(power_w), COUNT(power_w), MAX(temp_max_c), MIN(fan_min_rpm)
     FROM samples WHERE ts / 600000 = ? GROUP BY rig_id, ts / 60000 ${foldInto('samples_1m')}`,
  );
  const deleteRaw = db.prepare('DELETE FROM samples WHERE ts / 600000 = ?');
  const deleteProbes = db.prepare(
    'DELETE FROM probe_results WHERE id IN (SELECT id FROM probe_results WHERE ts < ? ORDER BY id LIMIT ?)',
  );
  // Raw → 1 minute, one whole bucket at a time (only buckets entirely older than the cutoff).
  while (chunks < maxChunks) {
    const b = oldestBucket.get()?.b ?? null;
    if (b === null || (b + 1) * BUCKET_MS > rawCutoff) break;
    db.transaction(() => {
      foldRaw.run(b);
      deleteRaw.run(b);
    })();
    progress.rawBuckets++;
    chunks++;
  }
  while (chunks < maxChunks) {
    const n = deleteProbes.run(rawCutoff, options.chunkRows).changes;
    progress.rowsDropped += n;
    if (n === 0) break;
    chunks++;
  }

  // 1 minute → 1 hour, one hour-slice of the oldest rows at a time.
  const oldestMinute = db.prepare<[], { ts: number | null }>('SELECT MIN(ts) AS ts FROM samples_1m');
  const foldMinute = db.prepare(
    `INSERT INTO samples_1h (rig_id, ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm)
     SELECT rig_id, (ts / 3600000) * 3600000, SUM(n), SUM(reachable_n), SUM(hashrate_sum_hs), SUM(hashrate_n),
            SUM(power_sum_w), SUM(power_n), MAX(temp_max_c), MIN(fan_min_rpm)
     FROM samples_1m WHERE ts >= ? AND ts < ? GROUP BY rig_id, ts / 3600000 ${foldInto('samples_1h')}`,
  );
  const deleteMinute = db.prepare('DELETE FROM samples_1m WHERE ts >= ? AND ts < ?');
  while (chunks < maxChunks) {
    const ts = oldestMinute.get()?.ts ?? null;
    if (ts === null) break;
    const hour = Math.floor(ts / 3_600_000) * 3_600_000;
    if (hour + 3_600_000 > minuteCutoff) break;
    db.transaction(() => {
      foldMinute.run(hour, hour + 3_600_000);
      progress.minuteRowsFolded += deleteMinute.run(hour, hour + 3_600_000).changes;
    })();
    chunks++;
  }

  // Drop: everything past the last tier, in bounded chunks per table.
  const drops = [
    'DELETE FROM samples_1h WHERE (rig_id, ts) IN (SELECT rig_id, ts FROM samples_1h WHERE ts < ? LIMIT ?)',
    'DELETE FROM reports WHERE id IN (SELECT id FROM reports WHERE ts < ? ORDER BY ts LIMIT ?)',
    'DELETE FROM accounting WHERE (rig_id, ts) IN (SELECT rig_id, ts FROM accounting WHERE ts < ? LIMIT ?)',
    'DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE end_ms IS NOT NULL AND end_ms < ? LIMIT ?)',
  ].map((sql) => db.prepare(sql));
  for (const stmt of drops) {
    while (chunks < maxChunks) {
      const n = stmt.run(dropCutoff, options.chunkRows).changes;
      progress.rowsDropped += n;
      if (n === 0) break;
      chunks++;
    }
  }
  progress.done = chunks < maxChunks;
  return progress;
}
