/**
 * Runs the pure Diagnoser inside the collector: feeds it every birth, presence change and
 * committed report, ticks it for silence, and applies each Outcome to the store (one transaction)
 * and to the FleetView (what /metrics and the live view show). The Diagnoser's memory is
 * persisted so a restart keeps baselines and open incidents: to a file beside the database
 * (state-file.ts), or to its row in the database when there is no file path (`:memory:` stores).
 */

import { performance } from 'node:perf_hooks';
import {
  Diagnoser,
  type DiagnoserState,
  type DiagnosisConfig,
  type Incident,
  type Outcome,
} from '@hashwatch/diagnosis';
import type { Logger } from 'pino';
import type { FleetView, IncidentView } from '../fleet/view.js';
import type { CommittedReport, Ingest, PresenceChange } from '../ingest/index.js';
import { runInSlices } from '../slices.js';
import {
  applyDiagnoses,
  clearDiagnosisState,
  closeOrphanIncidents,
  loadDiagnosisState,
  type Store,
  saveDiagnosisState,
} from '../store/index.js';
import { loadStateFile, saveStateFile } from './state-file.js';

export interface DiagnosisRunnerOptions {
  /** How often silence is checked (agents that stopped reporting become `unknown`). */
  tickMs: number;
  /** How often the Diagnoser's memory is saved. */
  persistMs: number;
  /**
   * Where the memory is saved (`stateFilePath` of the database). Without it, the memory goes to its
   * row in the database, synchronously; that row is also where earlier versions kept it.
   */
  statePath?: string;
  /** Closed incidents stay in the live view this long after they end. */
  keepClosedIncidentsMs: number;
  /**
   * Event-loop utilization over a tick period (0–1) at or above which the collector counts as
   * behind on reading reports (see `Diagnoser.tick`'s `behind`); 1 never holds.
   */
  behindUtilization: number;
  /**
   * Main-thread time after which a save that is making the memory's JSON gives the event loop a
   * turn (default `SLICE_MS`); 0 pauses after every piece.
   */
  saveSliceMs?: number;
  config: Partial<DiagnosisConfig>;
}

export const DIAGNOSIS_RUNNER_DEFAULTS: Omit<DiagnosisRunnerOptions, 'config'> = {
  tickMs: 5_000,
  persistMs: 60_000,
  keepClosedIncidentsMs: 3_600_000,
  behindUtilization: 0.9,
};

/** Event-loop utilization (0–1) since the previous call: how busy the collector's one thread was. */
export function eventLoopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}

export interface DiagnosisRunnerStats {
  outcomesApplied: number;
  applyFailures: number;
  stateChanges: number;
  lastApplyMs: number;
  /** The collector's event loop was saturated over the last tick period: silence judgments are held. */
  behind: boolean;
  /** Ticks whose silence judgments were held since start. */
  behindTicks: number;
  /** Saves of the memory skipped because the previous one was still being written. */
  persistSkipped: number;
  /** Saves of the memory to its file that failed (each is logged). */
  persistFailures: number;
}

function toIncidentView(incident: Incident): IncidentView {
  return {
    id: incident.id,
    scope: incident.scope,
    scopeId: incident.scopeId,
    site: incident.site,
    cause: incident.cause,
    startMs: incident.startMs,
    ...(incident.endMs !== null ? { endMs: incident.endMs } : {}),
    rigsAffected: incident.rigs.length,
    deficitHashes: incident.deficitHashes,
    energyJ: incident.energyJ,
    evidence: incident.evidence.map((e) => `${e.signal}: ${e.detail}`),
  };
}

export class DiagnosisRunner {
  private readonly store: Store;
  private readonly view: FleetView;
  private readonly ingest: Ingest;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly utilization: () => number;
  private readonly options: DiagnosisRunnerOptions;
  private readonly diagnoser: Diagnoser;
  private tickTimer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private running = false;
  /** The save being written to the state file; resolved when there is none. */
  private saving: Promise<void> = Promise.resolve();
  private savePending = false;
  /**
   * Steps that arrived while a save was taking the memory in slices, to run in order once it has
   * all of it: the saved memory is then one moment's, as the Diagnoser requires.
   */
  private held: Array<() => Outcome> | null = null;
  private legacyRowCleared = false;
  private readonly counters: DiagnosisRunnerStats = {
    outcomesApplied: 0,
    applyFailures: 0,
    stateChanges: 0,
    lastApplyMs: 0,
    behind: false,
    behindTicks: 0,
    persistSkipped: 0,
    persistFailures: 0,
  };

  constructor(
    deps: {
      store: Store;
      view: FleetView;
      ingest: Ingest;
      log: Logger;
      now?: () => number;
      /** Busy share of the event loop since the previous call (default: node's ELU). */
      utilization?: () => number;
    },
    options: DiagnosisRunnerOptions,
  ) {
    this.store = deps.store;
    this.view = deps.view;
    this.ingest = deps.ingest;
    this.log = deps.log;
    this.now = deps.now ?? Date.now;
    this.utilization = deps.utilization ?? eventLoopUtilization();
    this.options = options;
    this.diagnoser = new Diagnoser(options.config);
  }

  start(): void {
    const saved = this.loadSaved();
    if (saved) {
      try {
        this.diagnoser.importState(saved as DiagnoserState);
        for (const incident of this.diagnoser.openIncidents()) this.view.upsertIncident(toIncidentView(incident));
      } catch (err) {
        // A state from an incompatible version only costs re-learning baselines; never a failed start.
        this.log.warn({ err: (err as Error).message }, 'Saved diagnosis state not loaded; starting fresh');
      }
    }
    try {
      const known = new Set(this.diagnoser.openIncidents().map((i) => i.id));
      const closed = closeOrphanIncidents(this.store, known, this.now());
      if (closed > 0) this.log.warn({ closed }, 'Closed incidents opened after the last saved diagnosis state');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'Could not close orphaned incidents');
    }
    this.running = true;
    // The time is taken when the event happens, not when the step runs: a save may hold steps.
    this.ingest.onBirth((site, host, birth) => {
      const nowMs = this.now();
      this.run(() => this.diagnoser.observeBirth(site, host, birth, nowMs));
    });
    this.ingest.onPresence((change: PresenceChange) => {
      const nowMs = this.now();
      const presence = {
        status: change.session.status,
        ...(change.session.reason ? { reason: change.session.reason } : {}),
        boot_id: change.session.bootId,
        conn: change.session.conn,
      };
      this.run(() => this.diagnoser.observePresence(change.site, change.host, presence, nowMs));
    });
    this.ingest.onCommitted((reports: CommittedReport[]) => {
      // Oldest first, so a backfill and the live report that overtook it are read in time order.
      const ordered = [...reports].sort((a, b) => a.report.ts - b.report.ts);
      const behind = this.counters.behind;
      this.runAll(
        ordered.map((r) => () => this.diagnoser.observeReport(r.site, r.host, r.report, r.receivedAtMs, { behind })),
      );
    });
    this.utilization(); // the first tick measures its own period, not the start-up
    this.tickTimer = setInterval(() => this.tick(), this.options.tickMs);
    this.tickTimer.unref();
    this.persistTimer = setInterval(() => this.persist(), this.options.persistMs);
    this.persistTimer.unref();
  }

  /** Stops ticking and saves the memory once more; resolves when it is on disk. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearInterval(this.tickTimer);
    clearInterval(this.persistTimer);
    // Without a save in flight this one starts at once (and, to the database, completes at once).
    if (this.savePending) await this.saving;
    this.persist();
    await this.saving;
  }

  stats(): DiagnosisRunnerStats {
    return { ...this.counters };
  }

  /** Current state of a scope as the Diagnoser holds it (for tests and the API). */
  stateOf(scope: 'rig' | 'host' | 'site', id: string): { state: string; sinceMs: number } | undefined {
    return this.diagnoser.stateOf(scope, id);
  }

  /**
   * Silence is judged from when the collector read a host's last report. A saturated collector
   * reads late, so while its loop is busy past `behindUtilization` it holds those judgments (and
   * clock-offset estimates) instead of marking agents that still report `unknown`.
   */
  private tick(): void {
    const busy = this.utilization();
    const behind = this.options.behindUtilization < 1 && busy >= this.options.behindUtilization;
    if (behind !== this.counters.behind) {
      const share = Math.round(busy * 100);
      if (behind) {
        this.log.warn(
          { event: 'diagnosis_behind', event_loop_busy_percent: share },
          'Collector saturated: holding silence judgments until it catches up',
        );
      } else {
        this.log.info({ event: 'diagnosis_caught_up', event_loop_busy_percent: share }, 'Collector caught up');
      }
      this.counters.behind = behind;
    }
    if (behind) this.counters.behindTicks++;
    const nowMs = this.now();
    this.run(() => this.diagnoser.tick(nowMs, { behind }));
  }

  /** Once the file holds the memory, the row an earlier version saved would only be stale. */
  private clearLegacyRow(path: string): void {
    this.legacyRowCleared = true;
    try {
      if (clearDiagnosisState(this.store))
        this.log.info({ path }, 'Diagnosis state moved from the database to its file');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'Could not delete the diagnosis state row of an earlier version');
    }
  }

  /** The memory a previous run saved: its file, else (an upgrade, or no file path) its row. */
  private loadSaved(): unknown {
    const path = this.options.statePath;
    if (path) {
      try {
        const file = loadStateFile(path);
        if (file) return file.state;
      } catch (err) {
        this.log.error({ err: (err as Error).message, path }, 'Saved diagnosis state unreadable; trying the database');
      }
    }
    return loadDiagnosisState(this.store);
  }

  /**
   * Saves the memory. Its JSON is made on the main thread in slices of ~`SLICE_MS` (at 50,000 rigs
   * it was one 100–170 ms stall a minute, BENCHMARKS.md finding 26), with the diagnosis steps that
   * arrive meanwhile held and run after the last slice, so the file holds one moment's memory; the
   * thread pool writes the file. A save still running when the next is due makes that one skip (a
   * slow disk must not queue copies of the memory). Without a file path the row is written at once.
   */
  private persist(): void {
    const path = this.options.statePath;
    if (!path) {
      try {
        saveDiagnosisState(this.store, this.diagnoser.exportStateJson(), this.now());
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'Could not save the diagnosis state');
      }
      return;
    }
    if (this.savePending) {
      this.counters.persistSkipped++;
      return;
    }
    this.savePending = true;
    const savedMs = this.now(); // the moment the memory is taken: steps are held from here on
    this.saving = this.exportInSlices()
      .then((pieces) => saveStateFile(path, pieces, savedMs))
      .then(() => {
        if (!this.legacyRowCleared) this.clearLegacyRow(path);
      })
      .catch((err: Error) => {
        this.counters.persistFailures++;
        this.log.error({ err: err.message, path }, 'Could not save the diagnosis state');
      })
      .finally(() => {
        this.savePending = false;
      });
  }

  /** The memory's JSON text in pieces, made in slices while diagnosis steps are held. */
  private async exportInSlices(): Promise<string[]> {
    const pieces: string[] = [];
    const source = this.diagnoser.exportStateJsonPieces();
    function* collect() {
      for (const piece of source) yield pieces.push(piece);
    }
    this.held = [];
    try {
      await runInSlices(collect(), this.options.saveSliceMs);
    } finally {
      const held = this.held;
      this.held = null;
      // Accepted while running, so run even if stop() came meanwhile: they were committed reports.
      this.apply(held);
    }
    return pieces;
  }

  /** One failing outcome is logged and counted; it never stops ingest or the other outcomes. */
  private run(step: () => Outcome): void {
    this.runAll([step]);
  }

  /** Runs the steps in order and stores all their outcomes in one transaction. */
  private runAll(steps: ReadonlyArray<() => Outcome>): void {
    if (!this.running) return;
    if (this.held) this.held.push(...steps);
    else this.apply(steps);
  }

  private apply(steps: ReadonlyArray<() => Outcome>): void {
    const outcomes: Outcome[] = [];
    for (const step of steps) {
      try {
        outcomes.push(step());
      } catch (err) {
        this.counters.applyFailures++;
        this.log.error({ err: (err as Error).stack }, 'Diagnosis step failed');
      }
    }
    if (outcomes.length === 0) return;
    const nowMs = this.now();
    try {
      for (const { error } of applyDiagnoses(this.store, outcomes, nowMs)) {
        this.counters.applyFailures++;
        this.log.error({ err: error.message }, 'Could not store diagnosis results');
      }
    } catch (err) {
      this.counters.applyFailures += outcomes.length;
      this.log.error({ err: (err as Error).message, outcomes: outcomes.length }, 'Could not store diagnosis results');
    }
    for (const outcome of outcomes) {
      this.applyToView(outcome, nowMs);
      this.counters.outcomesApplied++;
    }
    this.counters.lastApplyMs = nowMs;
  }

  private applyToView(outcome: Outcome, nowMs: number): void {
    for (const change of outcome.changes) {
      this.counters.stateChanges++;
      const evidence = change.evidence.map((e) => `${e.signal}: ${e.detail}`);
      if (change.scope === 'rig' && change.host !== undefined && change.rig !== undefined) {
        this.view.upsertRig(
          change.site,
          change.host,
          change.rig,
          { state: change.to, stateSinceMs: change.sinceMs, evidence },
          nowMs,
        );
      } else if (change.scope === 'host' && change.host !== undefined) {
        this.view.upsertHost(change.site, change.host, { state: change.to }, nowMs);
      } else if (change.scope === 'site') {
        this.view.setSiteState(change.site, change.to);
      }
      this.log.info(
        {
          site: change.site,
          host: change.host,
          rig: change.rig,
          scope: change.scope,
          from: change.from,
          to: change.to,
          evidence,
        },
        'State changed',
      );
    }
    const latestExpected = new Map<string, { ts: number; hs: number; site: string; host: string; rig: string }>();
    for (const row of outcome.rows) {
      // A provisional row is rewritten by the interval's final row: counting both counted it twice.
      if (row.state !== 'ok' && row.provisional !== true) this.view.addDeficit(row.state, row.deficit_hashes);
      const key = `${row.site}/${row.host}/${row.rig}`;
      const seen = latestExpected.get(key);
      if (!seen || seen.ts < row.ts)
        latestExpected.set(key, { ts: row.ts, hs: row.expected_hs, site: row.site, host: row.host, rig: row.rig });
    }
    for (const e of latestExpected.values()) {
      const rig = this.view.getRig(e.site, e.host, e.rig);
      // Only a changed expectation is a change: this runs for every rig of every report.
      if (rig && rig.expectedHashrateHs !== e.hs && (rig.sample === undefined || rig.sample.ts <= e.ts + 60_000)) {
        this.view.upsertRig(e.site, e.host, e.rig, { expectedHashrateHs: e.hs }, nowMs);
      }
    }
    for (const update of outcome.incidents) {
      if (update.action === 'void') this.view.incidents.delete(update.incident.id);
      else this.view.upsertIncident(toIncidentView(update.incident));
    }
    this.view.pruneIncidents(nowMs - this.options.keepClosedIncidentsMs);
  }
}
