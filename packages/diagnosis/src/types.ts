/**
 * The values the diagnosis hands back to its caller. Everything is plain JSON so the collector can
 * persist, publish and log it without translation.
 */

/** Per-rig state (DESIGN.md "States"); host and site roll up into the same names. */
export const STATES = [
  'ok',
  'degraded',
  'hardware_fault',
  'connectivity_loss',
  'pool_outage',
  'power_loss',
  'unreachable',
  'unknown',
] as const;
export type State = (typeof STATES)[number];

/** The causes an incident or an attribution row can carry: every state but `ok`. */
export type Cause = Exclude<State, 'ok'>;

export type Scope = 'rig' | 'host' | 'site';

/** One signal that decided a state, phrased for an operator (`internet probes 2/2 failed`). */
export interface Evidence {
  /** Dotted signal name: `probe.internet`, `rig.hashrate`, `rig.boards`, `feed`, `presence`, … */
  signal: string;
  detail: string;
}

/** A scope moved from one state to another. `sinceMs` may precede `atMs`: confirmation backdates. */
export interface StateChange {
  scope: Scope;
  /** `site`, `site/host` or `site/host/rig`. */
  id: string;
  site: string;
  host?: string;
  rig?: string;
  from: State;
  to: State;
  /** When the new state began (first sample that showed it). */
  sinceMs: number;
  /** When the diagnosis decided it (the `nowMs` of the call). */
  atMs: number;
  evidence: Evidence[];
}

/** A maximal period of one non-ok cause on one scope. */
export interface Incident {
  /** Stable id: `${scopeId}@${startMs}`. */
  id: string;
  scope: Scope;
  scopeId: string;
  site: string;
  host?: string;
  rig?: string;
  cause: Cause;
  startMs: number;
  /** Null while open. */
  endMs: number | null;
  /** Rig ids (`host/rig`) that were not ok during the incident. */
  rigs: string[];
  /** ∫ max(0, expected − actual) dt over the incident, in hashes. */
  deficitHashes: number;
  /** ∫ power dt over the incident where power was known, in joules. */
  energyJ: number;
  evidence: Evidence[];
}

/**
 * `open` and `close` bracket an incident; `extend` carries its running totals; `relabel` changes
 * its cause after backfilled evidence; `void` withdraws it (the gap turned out to be `ok`).
 * Each update carries the whole incident: store it by `incident.id` (upsert).
 */
export interface IncidentUpdate {
  action: 'open' | 'extend' | 'close' | 'relabel' | 'void';
  incident: Incident;
}

/**
 * One rig over one covered interval [ts, ts + duration_ms). Stored by (site, host, rig, ts) with
 * upsert semantics: a later row with the same key replaces the earlier one. Summing
 * `deficit_hashes` grouped by `state` over a window answers "where did my hashrate go".
 */
export interface AccountingRow {
  site: string;
  host: string;
  rig: string;
  ts: number;
  duration_ms: number;
  state: State;
  expected_hs: number;
  /** Effective hashrate: what reached a pool. Zero while the pool path or power is down. */
  actual_hs: number;
  deficit_hashes: number;
  /** Null when no power figure is known for the interval. */
  energy_j: number | null;
  /**
   * A live row written while a state change awaits confirmation, under the state before it: a later
   * row with the same key rewrites it. Counters count only the rows that are not provisional, so each
   * interval's deficit is counted once.
   */
  provisional?: true;
}

/** Delete the rows of one rig with `fromMs <= ts < toMs`; applied before the rows of the same outcome. */
export interface Retraction {
  site: string;
  host: string;
  rig: string;
  fromMs: number;
  toMs: number;
}

/** What one call into the Diagnoser changed. Apply in order: retractions, rows, incidents. */
export interface Outcome {
  changes: StateChange[];
  incidents: IncidentUpdate[];
  retractions: Retraction[];
  rows: AccountingRow[];
}

export function emptyOutcome(): Outcome {
  return { changes: [], incidents: [], retractions: [], rows: [] };
}
