/**
 * Writes the diagnosis runner's outcomes: accounting rows (with retractions when a gap is
 * relabelled), incidents by their stable key, and current states, all in one transaction per
 * outcome; plus the Diagnoser's persisted memory. Scope ids in the tables are integer ids.
 */
import type { Outcome } from '@hashwatch/diagnosis';
import { carveFolded, foldedBefore } from './accounting.js';
import { toStoreError } from './errors.js';
import type { Store } from './store.js';

type Statements = ReturnType<typeof prepare>;
const statements = new WeakMap<Store, { db: unknown; s: Statements }>();

function prepare(store: Store) {
  const db = store.db;
  return {
    retract: db.prepare('DELETE FROM accounting WHERE rig_id = ? AND ts >= ? AND ts < ? AND folded = 0'),
    upsertRow: db.prepare(
      `INSERT INTO accounting (rig_id, site_id, ts, duration_ms, state, cause, expected_hs, actual_hs, deficit_hashes, energy_j)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (rig_id, ts) DO UPDATE SET duration_ms = excluded.duration_ms, state = excluded.state,
         cause = excluded.cause, expected_hs = excluded.expected_hs, actual_hs = excluded.actual_hs,
         deficit_hashes = excluded.deficit_hashes, energy_j = excluded.energy_j, folded = 0`,
    ),
    upsertIncident: db.prepare(
      `INSERT INTO incidents (key, scope, scope_id, site_id, cause, start_ms, end_ms, rigs_affected, deficit_hashes, energy_j, evidence_json)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET cause = excluded.cause, start_ms = excluded.start_ms, end_ms = excluded.end_ms,
         rigs_affected = excluded.rigs_affected, deficit_hashes = excluded.deficit_hashes, energy_j = excluded.energy_j,
         evidence_json = excluded.evidence_json`,
    ),
    deleteIncident: db.prepare('DELETE FROM incidents WHERE key = ?'),
    upsertState: db.prepare(
      `INSERT INTO states (scope, scope_id, state, since_ms, updated_ms, evidence_json) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, scope_id) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms,
         updated_ms = excluded.updated_ms, evidence_json = excluded.evidence_json`,
    ),
    saveState: db.prepare(
      `INSERT INTO diagnosis_state (id, saved_ms, state_json) VALUES (1, ?, ?)
       ON CONFLICT (id) DO UPDATE SET saved_ms = excluded.saved_ms, state_json = excluded.state_json`,
    ),
    loadState: db.prepare<[], { state_json: string }>('SELECT state_json FROM diagnosis_state WHERE id = 1'),
    clearState: db.prepare('DELETE FROM diagnosis_state'),
    openIncidentKeys: db.prepare<[], { key: string }>('SELECT key FROM incidents WHERE end_ms IS NULL'),
    closeOrphan: db.prepare(
      `UPDATE incidents SET end_ms = MAX(start_ms, ?),
         evidence_json = json_insert(COALESCE(evidence_json, '{"evidence":[]}'), '$.evidence[#]', json(?))
       WHERE key = ? AND end_ms IS NULL`,
    ),
  };
}

function stmts(store: Store): Statements {
  const cached = statements.get(store);
  // A reopened store has a new connection: statements of the old one are unusable.
  if (cached && cached.db === store.db) return cached.s;
  const s = prepare(store);
  statements.set(store, { db: store.db, s });
  return s;
}

/** Resolves `site`, `site/host` or `site/host/rig` to the integer id of its table. */
function scopeIds(store: Store, scopeId: string, nowMs: number): { siteId: number; id: number } {
  const [site, host, rig] = scopeId.split('/') as [string, string | undefined, string | undefined];
  if (host === undefined) {
    // A site has no row of its own until one of its hosts is known; the diagnosis only names sites it has seen.
    const ref = store.findSite(site);
    if (ref === undefined) throw new Error(`unknown site ${site}`);
    return { siteId: ref, id: ref };
  }
  const ref = store.ensureHost(site, host, nowMs);
  if (rig === undefined) return { siteId: ref.siteId, id: ref.hostId };
  return { siteId: ref.siteId, id: store.ensureRig(ref.hostId, rig, nowMs) };
}

/** Applies one Outcome in the order its contract asks: retractions, rows, incidents, states. */
export function applyDiagnosis(store: Store, outcome: Outcome, nowMs: number): void {
  if (
    outcome.rows.length === 0 &&
    outcome.retractions.length === 0 &&
    outcome.incidents.length === 0 &&
    outcome.changes.length === 0
  ) {
    return;
  }
  const s = stmts(store);
  try {
    store.db.transaction(() => {
      // Older rows may fall in a stretch the retention compacted: their time is carved out of it.
      const foldedUntilMs = outcome.retractions.length + outcome.rows.length > 0 ? foldedBefore(store.db) : 0;
      for (const r of outcome.retractions) {
        const { id } = scopeIds(store, `${r.site}/${r.host}/${r.rig}`, nowMs);
        s.retract.run(id, r.fromMs, r.toMs);
        if (r.fromMs < foldedUntilMs) carveFolded(store.db, id, r.fromMs, r.toMs);
      }
      for (const row of outcome.rows) {
        const { siteId, id } = scopeIds(store, `${row.site}/${row.host}/${row.rig}`, nowMs);
        if (row.ts < foldedUntilMs) carveFolded(store.db, id, row.ts, row.ts + row.duration_ms);
        s.upsertRow.run(
          id,
          siteId,
          row.ts,
          row.duration_ms,
          row.state,
          row.state,
          row.expected_hs,
          row.actual_hs,
          row.deficit_hashes,
          row.energy_j,
        );
      }
      for (const { action, incident } of outcome.incidents) {
        if (action === 'void') {
          s.deleteIncident.run(incident.id);
          continue;
        }
        const { siteId, id } = scopeIds(store, incident.scopeId, nowMs);
        s.upsertIncident.run(
          incident.id,
          incident.scope,
          id,
          siteId,
          incident.cause,
          incident.startMs,
          incident.endMs,
          incident.rigs.length,
          incident.deficitHashes,
          incident.energyJ,
          JSON.stringify({ rigs: incident.rigs, evidence: incident.evidence }),
        );
      }
      for (const c of outcome.changes) {
        const { id } = scopeIds(store, c.id, nowMs);
        s.upsertState.run(c.scope, id, c.to, c.sinceMs, nowMs, JSON.stringify(c.evidence));
      }
    })();
  } catch (err) {
    throw toStoreError(err, 'writing diagnosis results');
  }
}

/**
 * Persists the Diagnoser's memory (the JSON text of `exportStateJson()`) in the database: for
 * stores without a file of their own (`:memory:`); the collector saves it to a file beside the
 * database (collector/src/diagnosis/state-file.ts), as rewriting a large row stalls the main thread.
 */
export function saveDiagnosisState(store: Store, stateJson: string, nowMs: number): void {
  try {
    stmts(store).saveState.run(nowMs, stateJson);
  } catch (err) {
    throw toStoreError(err, 'saving the diagnosis state');
  }
}

/**
 * Applies the Outcomes of one committed batch in a single transaction: one fsync for the batch
 * instead of one per report (with synchronous=FULL that was the collector's largest single cost at
 * 50k rigs). Each Outcome runs in its own savepoint, so one that fails is rolled back alone and
 * returned with its error; the others commit. Throws (nothing applied) only if the commit fails.
 */
export function applyDiagnoses(
  store: Store,
  outcomes: readonly Outcome[],
  nowMs: number,
): Array<{ outcome: Outcome; error: Error }> {
  const failed: Array<{ outcome: Outcome; error: Error }> = [];
  try {
    store.db.transaction(() => {
      for (const outcome of outcomes) {
        try {
          applyDiagnosis(store, outcome, nowMs); // nested: a savepoint
        } catch (err) {
          failed.push({ outcome, error: err as Error });
        }
      }
    })();
  } catch (err) {
    throw toStoreError(err, 'writing diagnosis results');
  }
  return failed;
}

/**
 * Deletes the saved memory from the database (it lives in its own file now); true if there was
 * one. Freeing a large row's pages takes a while, so this runs once, after the first file save.
 */
export function clearDiagnosisState(store: Store): boolean {
  try {
    return stmts(store).clearState.run().changes > 0;
  } catch (err) {
    throw toStoreError(err, 'clearing the diagnosis state');
  }
}

/** The Diagnoser's memory saved by a previous run, if any. */
export function loadDiagnosisState(store: Store): unknown {
  const row = stmts(store).loadState.get();
  return row ? JSON.parse(row.state_json) : undefined;
}

/**
 * Closes, at `endMs` (the restart), the open incidents the restored Diagnoser does not know: they
 * were opened after its last state save by a run that was then killed, and nothing would ever close
 * them. If their condition still holds, the Diagnoser opens a new incident from the next reports.
 * Returns how many were closed.
 */
export function closeOrphanIncidents(store: Store, known: ReadonlySet<string>, endMs: number): number {
  const s = stmts(store);
  const evidence = JSON.stringify({
    signal: 'collector.restart',
    detail:
      'closed at a collector restart: the diagnosis memory of this incident was lost (killed after its last save)',
  });
  try {
    return store.db.transaction(() => {
      let closed = 0;
      for (const { key } of s.openIncidentKeys.all()) {
        if (!known.has(key)) closed += s.closeOrphan.run(endMs, evidence, key).changes;
      }
      return closed;
    })();
  } catch (err) {
    throw toStoreError(err, 'closing orphaned incidents');
  }
}
