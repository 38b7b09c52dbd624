/**
 * Read queries behind the HTTP API. Inputs are already validated (names, ranges) by the API layer;
 * every value reaches SQLite as a bound parameter, never as SQL text.
 */
import { MAX_ROW_SPAN_MS } from './accounting.js';
import { SAMPLE_BUCKET_MS } from './schema.js';
import type { SampleRow, Store } from './store.js';

export interface SiteSummary {
  site: string;
  hosts: number;
  rigs: number;
  state: string | null;
  state_since_ms: number | null;
}

export interface HostSummary {
  site: string;
  host: string;
  first_seen_ms: number;
  boot_id: string | null;
  agent_version: string | null;
  hostname: string | null;
  interval_ms: number | null;
  birth_ts: number | null;
  presence: { status: string; reason: string | null; conn: number; last_seen_ms: number } | null;
  rigs: number;
  state: string | null;
}

function stateOf(store: Store, scope: 'rig' | 'host' | 'site', id: number) {
  return store.db
    .prepare<[string, number], { state: string; since_ms: number; evidence_json: string | null }>(
      'SELECT state, since_ms, evidence_json FROM states WHERE scope = ? AND scope_id = ?',
    )
    .get(scope, id);
}

export function listSites(store: Store): SiteSummary[] {
  return store.db
    .prepare<[], SiteSummary>(
      `SELECT s.name AS site,
              (SELECT COUNT(*) FROM hosts h WHERE h.site_id = s.id) AS hosts,
              (SELECT COUNT(*) FROM rigs r JOIN hosts h ON h.id = r.host_id WHERE h.site_id = s.id AND r.in_inventory = 1) AS rigs,
              st.state AS state, st.since_ms AS state_since_ms
       FROM sites s LEFT JOIN states st ON st.scope = 'site' AND st.scope_id = s.id
       ORDER BY s.name`,
    )
    .all();
}

export function getSite(store: Store, site: string): SiteSummary | undefined {
  return listSites(store).find((s) => s.site === site);
}

export function listHosts(store: Store, site: string, host?: string): HostSummary[] {
  const rows = store.db
    .prepare<
      [string, string | null, string | null],
      Omit<HostSummary, 'presence'> & {
        id: number;
        p_status: string | null;
        p_reason: string | null;
        p_conn: number | null;
        p_seen: number | null;
      }
    >(
      `SELECT h.id, s.name AS site, h.name AS host, h.first_seen_ms, h.boot_id, h.agent_version, h.hostname,
              h.interval_ms, h.birth_ts,
              (SELECT COUNT(*) FROM rigs r WHERE r.host_id = h.id AND r.in_inventory = 1) AS rigs,
              st.state AS state,
              a.status AS p_status, a.reason AS p_reason, a.conn AS p_conn, a.last_seen_ms AS p_seen
       FROM hosts h JOIN sites s ON s.id = h.site_id
       LEFT JOIN states st ON st.scope = 'host' AND st.scope_id = h.id
       LEFT JOIN agent_sessions a ON a.id = (
         SELECT id FROM agent_sessions WHERE host_id = h.id ORDER BY last_seen_ms DESC, id DESC LIMIT 1)
       WHERE s.name = ? AND (? IS NULL OR h.name = ?)
       ORDER BY h.name`,
    )
    .all(site, host ?? null, host ?? null);
  return rows.map(({ id: _id, p_status, p_reason, p_conn, p_seen, ...rest }) => ({
    ...rest,
    presence:
      p_status === null
        ? null
        : { status: p_status, reason: p_reason, conn: p_conn as number, last_seen_ms: p_seen as number },
  }));
}

export interface HostDetail extends HostSummary {
  probes: unknown;
  latest_probes: Array<Record<string, unknown>>;
}

export function getHost(store: Store, site: string, host: string): HostDetail | undefined {
  const summary = listHosts(store, site, host)[0];
  const ref = store.findHost(site, host);
  if (!summary || !ref) return undefined;
  const probesJson = store.db
    .prepare<[number], { probes_json: string | null }>('SELECT probes_json FROM hosts WHERE id = ?')
    .get(ref.hostId)?.probes_json;
  const latestReport = store.db
    .prepare<[number], { id: number }>('SELECT id FROM reports WHERE host_id = ? ORDER BY ts DESC LIMIT 1')
    .get(ref.hostId);
  const latest = latestReport
    ? store.db
        .prepare<[number], Record<string, unknown>>(
          `SELECT target, kind, role, ok, attempts, loss_ratio, latency_ms, error_class, ts
           FROM probe_results WHERE report_id = ? ORDER BY target`,
        )
        .all(latestReport.id)
        .map((p) => ({ ...p, ok: p.ok === 1 }))
    : [];
  return { ...summary, probes: probesJson ? JSON.parse(probesJson) : [], latest_probes: latest };
}

export interface RigSummary {
  site: string;
  host: string;
  rig: string;
  in_inventory: boolean;
  model: string | null;
  api: string | null;
  nominal_hashrate_hs: number | null;
  nominal_power_w: number | null;
  feed: string | null;
  rack: string | null;
  state: { state: string; since_ms: number; evidence: unknown } | null;
  latest: (Omit<SampleRow, 'rig_id'> & { reachable: number }) | null;
}

export function listRigs(store: Store, filter: { site?: string; host?: string }, limit: number): RigSummary[] {
  const rows = store.db
    .prepare<
      [string | null, string | null, string | null, string | null, number],
      {
        id: number;
        site: string;
        host: string;
        rig: string;
        in_inventory: number;
        model: string | null;
        api: string | null;
        nominal_hashrate_hs: number | null;
        nominal_power_w: number | null;
        feed: string | null;
        rack: string | null;
      }
    >(
      `SELECT r.id, s.name AS site, h.name AS host, r.name AS rig, r.in_inventory, r.model, r.api,
              r.nominal_hashrate_hs, r.nominal_power_w, r.feed, r.rack
       FROM rigs r JOIN hosts h ON h.id = r.host_id JOIN sites s ON s.id = h.site_id
       WHERE (? IS NULL OR s.name = ?) AND (? IS NULL OR h.name = ?)
       ORDER BY s.name, h.name, r.name LIMIT ?`,
    )
    .all(filter.site ?? null, filter.site ?? null, filter.host ?? null, filter.host ?? null, limit);
  const bySampleId = store.db.prepare<[number], SampleRow>(
    `SELECT rig_id, ts, reachable, hashrate_hs, power_w, temp_max_c, fan_min_rpm, boards_ok, boards_total,
            accepted, rejected, stale, hw_errors, pool_ok, error_kind, flags FROM samples WHERE id = ?`,
  );
  return rows.map(({ id, in_inventory, ...r }) => {
    const st = stateOf(store, 'rig', id);
    const pointer = store.latestSample(id);
    const sample = pointer ? bySampleId.get(pointer.id) : undefined;
    let latest: RigSummary['latest'] = null;
    if (sample) {
      const { rig_id: _rig, ...figures } = sample;
      latest = figures;
    }
    return {
      ...r,
      in_inventory: in_inventory === 1,
      state: st
        ? { state: st.state, since_ms: st.since_ms, evidence: st.evidence_json ? JSON.parse(st.evidence_json) : null }
        : null,
      latest,
    };
  });
}

export function findRigId(store: Store, site: string, host: string, rig: string): number | undefined {
  const ref = store.findHost(site, host);
  if (!ref) return undefined;
  return store.db
    .prepare<[number, string], { id: number }>('SELECT id FROM rigs WHERE host_id = ? AND name = ?')
    .get(ref.hostId, rig)?.id;
}

/** One point of a rig's series; `n` is how many raw samples it stands for. */
export interface SeriesPoint {
  ts: number;
  n: number;
  reachable_ratio: number;
  hashrate_hs: number | null;
  power_w: number | null;
  temp_max_c: number | null;
  fan_min_rpm: number | null;
}

interface SumRow {
  ts: number;
  n: number;
  reachable_n: number;
  hashrate_sum_hs: number | null;
  hashrate_n: number;
  power_sum_w: number | null;
  power_n: number;
  temp_max_c: number | null;
  fan_min_rpm: number | null;
}

export class TooManyRowsError extends Error {}

/**
 * A rig's samples over [fromMs, toMs): raw rows where they still exist, downsampled rows where
 * retention folded them. With `stepMs`, points are averaged into step-wide buckets. Throws
 * TooManyRowsError past `maxRows` source rows (the caller asks for a larger step).
 */
export function rigSeries(
  store: Store,
  rigId: number,
  fromMs: number,
  toMs: number,
  stepMs: number | undefined,
  maxRows: number,
): SeriesPoint[] {
  const db = store.db;
  // One seek per 10-minute bucket (see schema.ts); CROSS JOIN pins the bucket list as the outer loop.
  const raw = db
    .prepare<{ rig: number; from: number; to: number; fromB: number; toB: number; limit: number }, SumRow>(
      `WITH RECURSIVE b(h) AS (SELECT :fromB UNION ALL SELECT h + 1 FROM b WHERE h < :toB)
       SELECT s.ts, 1 AS n, s.reachable AS reachable_n, s.hashrate_hs AS hashrate_sum_hs,
              (s.hashrate_hs IS NOT NULL) AS hashrate_n, s.power_w AS power_sum_w, (s.power_w IS NOT NULL) AS power_n,
              s.temp_max_c, s.fan_min_rpm
       FROM b CROSS JOIN samples s ON s.ts / ${SAMPLE_BUCKET_MS} = b.h AND s.rig_id = :rig AND s.ts >= :from AND s.ts < :to
       LIMIT :limit`,
    )
    .all({
      rig: rigId,
      from: fromMs,
      to: toMs,
      fromB: Math.floor(fromMs / SAMPLE_BUCKET_MS),
      toB: Math.floor((toMs - 1) / SAMPLE_BUCKET_MS),
      limit: maxRows + 1,
    });
  const tier = (table: 'samples_1m' | 'samples_1h') =>
    db
      .prepare<[number, number, number, number], SumRow>(
        `SELECT ts, n, reachable_n, hashrate_sum_hs, hashrate_n, power_sum_w, power_n, temp_max_c, fan_min_rpm
         FROM ${table} WHERE rig_id = ? AND ts >= ? AND ts < ? LIMIT ?`,
      )
      .all(rigId, fromMs, toMs, maxRows + 1);
  const rows = [...tier('samples_1h'), ...tier('samples_1m'), ...raw];
  if (rows.length > maxRows) throw new TooManyRowsError(`more than ${maxRows} rows`);
  rows.sort((a, b) => a.ts - b.ts);
  const merged: SumRow[] = [];
  for (const r of rows) {
    const ts = stepMs ? Math.floor(r.ts / stepMs) * stepMs : r.ts;
    const last = merged[merged.length - 1];
    if (stepMs && last && last.ts === ts) {
      last.n += r.n;
      last.reachable_n += r.reachable_n;
      last.hashrate_sum_hs = (last.hashrate_sum_hs ?? 0) + (r.hashrate_sum_hs ?? 0);
      last.hashrate_n += r.hashrate_n;
      last.power_sum_w = (last.power_sum_w ?? 0) + (r.power_sum_w ?? 0);
      last.power_n += r.power_n;
      if (r.temp_max_c !== null) last.temp_max_c = Math.max(last.temp_max_c ?? r.temp_max_c, r.temp_max_c);
      if (r.fan_min_rpm !== null) last.fan_min_rpm = Math.min(last.fan_min_rpm ?? r.fan_min_rpm, r.fan_min_rpm);
    } else {
      merged.push({ ...r, ts });
    }
  }
  return merged.map((r) => ({
    ts: r.ts,
    n: r.n,
    reachable_ratio: r.n === 0 ? 0 : r.reachable_n / r.n,
    hashrate_hs: r.hashrate_n === 0 ? null : (r.hashrate_sum_hs ?? 0) / r.hashrate_n,
    power_w: r.power_n === 0 ? null : (r.power_sum_w ?? 0) / r.power_n,
    temp_max_c: r.temp_max_c,
    fan_min_rpm: r.fan_min_rpm,
  }));
}

export interface IncidentRow {
  id: number;
  scope: string;
  scope_name: string | null;
  site: string;
  cause: string;
  start_ms: number;
  end_ms: number | null;
  rigs_affected: number;
  deficit_hashes: number;
  energy_j: number;
  evidence: unknown;
}

/** Incidents overlapping [fromMs, toMs), optionally of one site and/or still open. */
export function listIncidents(
  store: Store,
  q: { fromMs: number; toMs: number; site?: string; openOnly: boolean },
  limit: number,
): IncidentRow[] {
  return store.db
    .prepare<
      [number, number, number, string | null, string | null, number],
      IncidentRow & { evidence_json: string | null }
    >(
      `SELECT i.id, i.scope, s.name AS site, i.cause, i.start_ms, i.end_ms, i.rigs_affected, i.deficit_hashes,
              i.energy_j, i.evidence_json,
              CASE i.scope WHEN 'site' THEN s.name
                           WHEN 'host' THEN (SELECT name FROM hosts WHERE id = i.scope_id)
                           ELSE (SELECT h.name || '/' || r.name FROM rigs r JOIN hosts h ON h.id = r.host_id WHERE r.id = i.scope_id)
              END AS scope_name
       FROM incidents i JOIN sites s ON s.id = i.site_id
       WHERE i.start_ms < ? AND (i.end_ms IS NULL OR i.end_ms > ?) AND (? = 0 OR i.end_ms IS NULL)
         AND (? IS NULL OR s.name = ?)
       ORDER BY i.start_ms DESC LIMIT ?`,
    )
    .all(q.toMs, q.fromMs, q.openOnly ? 1 : 0, q.site ?? null, q.site ?? null, limit)
    .map(({ evidence_json, ...r }) => ({ ...r, evidence: evidence_json ? JSON.parse(evidence_json) : null }));
}

export interface Attribution {
  from_ms: number;
  to_ms: number;
  total_deficit_hashes: number;
  by_cause: Array<{ cause: string; deficit_hashes: number; share: number }>;
}

/**
 * Where the hashrate went over [fromMs, toMs): the deficit split by cause (sums to the total).
 * Intervals cut by the window's edges count pro rata. An accounting row spans at most
 * MAX_ROW_SPAN_MS (a compacted run, see accounting.ts), which bounds the index range scanned before
 * the window.
 */
export function attribution(store: Store, q: { fromMs: number; toMs: number; site?: string }): Attribution {
  const rows = store.db
    .prepare<
      [number, number, number, number, number, string | null, string | null],
      { cause: string; deficit: number }
    >(
      `SELECT a.cause,
              SUM(a.deficit_hashes * (MIN(a.ts + a.duration_ms, ?) - MAX(a.ts, ?)) / MAX(a.duration_ms, 1)) AS deficit
       FROM accounting a JOIN sites s ON s.id = a.site_id
       WHERE a.ts >= ? AND a.ts < ? AND a.ts + a.duration_ms > ? AND (? IS NULL OR s.name = ?)
       GROUP BY a.cause HAVING deficit > 0 ORDER BY deficit DESC`,
    )
    .all(q.toMs, q.fromMs, q.fromMs - MAX_ROW_SPAN_MS, q.toMs, q.fromMs, q.site ?? null, q.site ?? null);
  const total = rows.reduce((sum, r) => sum + r.deficit, 0);
  return {
    from_ms: q.fromMs,
    to_ms: q.toMs,
    total_deficit_hashes: total,
    by_cause: rows.map((r) => ({
      cause: r.cause,
      deficit_hashes: r.deficit,
      share: total === 0 ? 0 : r.deficit / total,
    })),
  };
}
