/**
 * Writes for the diagnosis runner (wired by the lead): current states, incidents and per-interval
 * accounting, all in one transaction per call. Scope ids are the integer ids of sites/hosts/rigs.
 */
import { toStoreError } from './errors.js';
import type { Store } from './store.js';

export type Scope = 'rig' | 'host' | 'site';

export interface StateWrite {
  scope: Scope;
  scopeId: number;
  state: string;
  sinceMs: number;
  evidence: unknown;
}

export interface IncidentWrite {
  /** Set to update an existing incident (e.g. to close it); absent to open a new one. */
  id?: number;
  scope: Scope;
  scopeId: number;
  siteId: number;
  cause: string;
  startMs: number;
  endMs: number | null;
  rigsAffected: number;
  deficitHashes: number;
  energyJ: number;
  evidence: unknown;
}

export interface AccountingWrite {
  rigId: number;
  siteId: number;
  ts: number;
  durationMs: number;
  state: string;
  cause: string;
  expectedHs: number;
  actualHs: number;
  deficitHashes: number;
}

/** Returns the ids of the incidents written, in input order. Throws a StoreError. */
export function recordDiagnosis(
  store: Store,
  w: { states?: StateWrite[]; incidents?: IncidentWrite[]; accounting?: AccountingWrite[] },
  nowMs: number,
): number[] {
  const db = store.db;
  const upsertState = db.prepare(
    `INSERT INTO states (scope, scope_id, state, since_ms, updated_ms, evidence_json) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (scope, scope_id) DO UPDATE SET state = excluded.state, since_ms = excluded.since_ms,
       updated_ms = excluded.updated_ms, evidence_json = excluded.evidence_json`,
  );
  const insertIncident = db.prepare(
    `INSERT INTO incidents (scope, scope_id, site_id, cause, start_ms, end_ms, rigs_affected, deficit_hashes, energy_j, evidence_json)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const updateIncident = db.prepare(
    `UPDATE incidents SET end_ms = ?, rigs_affected = ?, deficit_hashes = ?, energy_j = ?, evidence_json = ? WHERE id = ?`,
  );
  const upsertAccounting = db.prepare(
    `INSERT INTO accounting (rig_id, site_id, ts, duration_ms, state, cause, expected_hs, actual_hs, deficit_hashes)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (rig_id, ts) DO UPDATE SET duration_ms = excluded.duration_ms, state = excluded.state,
       cause = excluded.cause, expected_hs = excluded.expected_hs, actual_hs = excluded.actual_hs,
       deficit_hashes = excluded.deficit_hashes`,
  );
  try {
    return db.transaction(() => {
      for (const s of w.states ?? []) {
        upsertState.run(s.scope, s.scopeId, s.state, s.sinceMs, nowMs, JSON.stringify(s.evidence ?? null));
      }
      const ids: number[] = [];
      for (const i of w.incidents ?? []) {
        const evidence = JSON.stringify(i.evidence ?? null);
        if (i.id !== undefined) {
          updateIncident.run(i.endMs, i.rigsAffected, i.deficitHashes, i.energyJ, evidence, i.id);
          ids.push(i.id);
        } else {
          const info = insertIncident.run(
            i.scope,
            i.scopeId,
            i.siteId,
            i.cause,
            i.startMs,
            i.endMs,
            i.rigsAffected,
            i.deficitHashes,
            i.energyJ,
            evidence,
          );
          ids.push(Number(info.lastInsertRowid));
        }
      }
      for (const a of w.accounting ?? []) {
        upsertAccounting.run(
          a.rigId,
          a.siteId,
          a.ts,
          a.durationMs,
          a.state,
          a.cause,
          a.expectedHs,
          a.actualHs,
          a.deficitHashes,
        );
      }
      return ids;
    })();
  } catch (err) {
    throw toStoreError(err, 'writing diagnosis results');
  }
}
