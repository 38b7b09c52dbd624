/**
 * Replays a generated scenario through the real Diagnoser, keeps the accounting rows the way a
 * store would (retractions, then upserts), and scores the final labels against the ground truth.
 */
import { attribution } from '../attribution.js';
import type { DiagnosisConfig } from '../config.js';
import { Diagnoser } from '../diagnoser.js';
import { type AccountingRow, type Incident, type Outcome, STATES, type State, type StateChange } from '../types.js';
import type { GeneratedScenario } from './generate.js';

/** Causes the runner holds to precision and recall targets (every state that has ground truth). */
export const SCORED: State[] = STATES.filter((s) => s !== 'unknown');

export const TARGETS = {
  precision: 0.95,
  recall: 0.95,
  /** Connectivity loss (and an agent falling silent) must show within this many intervals. */
  connectivityDetectIntervals: 2,
  /** Any other injected fault must show within this many intervals. */
  otherDetectIntervals: 4,
  attributionError: 0.05,
} as const;

export interface Detection {
  index: number;
  kind: string;
  cause: State;
  /** Time from injection to the first real-time state change that shows it; null = never. */
  detectMs: number | null;
  limitMs: number | null;
  /** The agents went silent: detection is the first change away from ok (to unknown). */
  silent: boolean;
  ok: boolean;
}

export interface ScenarioResult {
  name: string;
  pass: boolean;
  failures: string[];
  /** truth → predicted → scored rig-intervals. */
  confusion: Record<string, Record<string, number>>;
  scoredSlots: number;
  detections: Detection[];
  deficitTruthHashes: number;
  deficitPredHashes: number;
  attributionError: number;
  /** Scored intervals where connectivity loss was labelled hardware fault or the reverse. */
  connHwConfusions: number;
}

/**
 * A store in memory with the collector's semantics: retract, then upsert rows by (rig, ts), then
 * upsert incidents by id (`void` deletes).
 */
export class MemoryStore {
  readonly rows = new Map<string, Map<number, AccountingRow>>();
  readonly incidents = new Map<string, Incident>();
  apply(out: Outcome): void {
    for (const r of out.retractions) {
      const m = this.rows.get(`${r.site}/${r.host}/${r.rig}`);
      if (!m) continue;
      for (const ts of [...m.keys()]) if (ts >= r.fromMs && ts < r.toMs) m.delete(ts);
    }
    for (const row of out.rows) {
      const key = `${row.site}/${row.host}/${row.rig}`;
      let m = this.rows.get(key);
      if (!m) {
        m = new Map();
        this.rows.set(key, m);
      }
      m.set(row.ts, row);
    }
    for (const { action, incident } of out.incidents) {
      if (action === 'void') this.incidents.delete(incident.id);
      else this.incidents.set(incident.id, incident);
    }
  }
  all(): AccountingRow[] {
    return [...this.rows.values()].flatMap((m) => [...m.values()]);
  }
  /**
   * Rows that put hashrate on a cause (anything but ok) with no incident of their rig covering
   * them: an operator would see a deficit in attribution that no incident explains.
   */
  unexplained(): AccountingRow[] {
    const byRig = new Map<string, Incident[]>();
    for (const i of this.incidents.values()) {
      if (i.scope !== 'rig') continue;
      const list = byRig.get(i.scopeId) ?? [];
      list.push(i);
      byRig.set(i.scopeId, list);
    }
    return this.all().filter(
      (row) =>
        row.state !== 'ok' &&
        !(byRig.get(`${row.site}/${row.host}/${row.rig}`) ?? []).some(
          (i) => i.startMs <= row.ts && (i.endMs === null || row.ts < i.endMs),
        ),
    );
  }
}

export function runScenario(gen: GeneratedScenario, config: Partial<DiagnosisConfig> = {}): ScenarioResult {
  const d = new Diagnoser(config);
  const store = new MemoryStore();
  const changes: StateChange[] = [];
  for (const x of gen.deliveries) {
    let out: Outcome;
    if (x.kind === 'birth') out = d.observeBirth(x.site, x.host, x.birth, x.atMs);
    else if (x.kind === 'report') out = d.observeReport(x.site, x.host, x.report, x.atMs);
    else if (x.kind === 'presence') out = d.observePresence(x.site, x.host, x.presence, x.atMs);
    else out = d.tick(x.atMs);
    store.apply(out);
    changes.push(...out.changes);
  }

  const I = gen.intervalMs;
  const bucket = new Map<string, Map<number, AccountingRow>>();
  for (const [rig, m] of store.rows) {
    const b = new Map<number, AccountingRow>();
    for (const row of m.values()) b.set(Math.round((row.ts - gen.t0) / I), row);
    bucket.set(rig, b);
  }
  const confusion: Record<string, Record<string, number>> = {};
  let scoredSlots = 0;
  let connHw = 0;
  let deficitTruth = 0;
  let expectedTotal = 0;
  for (const t of gen.truth) {
    deficitTruth += (Math.max(0, t.expectedHs - t.effectiveHs) * I) / 1000;
    expectedTotal += (t.expectedHs * I) / 1000;
    if (!t.scored) continue;
    const pred = bucket.get(t.rig)?.get(Math.round((t.ts - gen.t0) / I))?.state ?? 'missing';
    const row = confusion[t.label] ?? {};
    row[pred] = (row[pred] ?? 0) + 1;
    confusion[t.label] = row;
    scoredSlots += 1;
    if (
      (t.label === 'connectivity_loss' && pred === 'hardware_fault') ||
      (t.label === 'hardware_fault' && pred === 'connectivity_loss')
    ) {
      connHw += 1;
    }
  }
  const endMs = gen.t0 + gen.spec.duration_min * 60_000;
  const deficitPred = attribution(store.all(), gen.t0, endMs + I).deficitHashes;
  const attributionError = Math.abs(deficitPred - deficitTruth) / Math.max(deficitTruth, 0.01 * expectedTotal);

  const detections: Detection[] = [];
  for (const inc of gen.incidents) {
    const rigs = new Set(inc.rigs);
    const spec = gen.spec.events[inc.index];
    let fromMs = inc.startMs;
    if (spec?.kind === 'degrade_slow') {
      const to = spec.to ?? 0.6;
      fromMs = inc.startMs + (0.1 / (1 - to)) * (inc.endMs - inc.startMs);
    }
    const wanted = (c: StateChange) => (inc.silent ? c.to !== 'ok' : c.to === inc.cause);
    if (inc.cause === 'ok' && !inc.silent) {
      const bad = changes.filter(
        (c) => c.scope === 'rig' && rigs.has(c.id) && c.atMs >= inc.startMs && c.atMs < inc.endMs && c.to !== 'ok',
      );
      detections.push({
        index: inc.index,
        kind: inc.kind,
        cause: 'ok',
        detectMs: null,
        limitMs: null,
        silent: false,
        ok: bad.length === 0,
      });
      continue;
    }
    const hit = changes.find((c) => c.scope === 'rig' && rigs.has(c.id) && c.atMs >= fromMs && wanted(c));
    const connectivity = inc.cause === 'connectivity_loss' || inc.silent;
    let limitMs: number | null =
      (connectivity ? TARGETS.connectivityDetectIntervals : TARGETS.otherDetectIntervals) * I;
    if (spec?.kind === 'degrade_slow') limitMs = 0.1 * (inc.endMs - inc.startMs);
    const detectMs = hit ? hit.atMs - fromMs : null;
    detections.push({
      index: inc.index,
      kind: inc.kind,
      cause: inc.cause,
      detectMs,
      limitMs,
      silent: inc.silent,
      ok: detectMs !== null && detectMs <= limitMs,
    });
  }

  const failures: string[] = [];
  if (connHw > 0) failures.push(`${connHw} rig-intervals confused connectivity loss with hardware fault`);
  const unexplained = store.unexplained().length;
  if (unexplained > 0) failures.push(`${unexplained} rig-intervals off ok belong to no incident`);
  for (const det of detections) {
    if (!det.ok) {
      failures.push(
        det.cause === 'ok' && !det.silent
          ? `event ${det.index} (${det.kind}) raised a false state`
          : `event ${det.index} (${det.kind}) detected ${det.detectMs === null ? 'never' : `after ${det.detectMs / 1000} s`} (limit ${(det.limitMs ?? 0) / 1000} s)`,
      );
    }
  }
  if (attributionError > TARGETS.attributionError) {
    failures.push(`attribution error ${(attributionError * 100).toFixed(1)} % > ${TARGETS.attributionError * 100} %`);
  }
  return {
    name: gen.spec.name,
    pass: failures.length === 0,
    failures,
    confusion,
    scoredSlots,
    detections,
    deficitTruthHashes: deficitTruth,
    deficitPredHashes: deficitPred,
    attributionError,
    connHwConfusions: connHw,
  };
}

export interface CauseScore {
  cause: State;
  truthSlots: number;
  predictedSlots: number;
  precision: number;
  recall: number;
  pass: boolean;
}

export interface Summary {
  causes: CauseScore[];
  pass: boolean;
  failures: string[];
}

/** Precision and recall per cause over the rig-intervals of every scenario, plus the per-scenario verdicts. */
export function summarize(results: ScenarioResult[]): Summary {
  const causes: CauseScore[] = [];
  const failures: string[] = [];
  for (const cause of SCORED) {
    let tp = 0;
    let truthN = 0;
    let predN = 0;
    for (const r of results) {
      for (const [truth, preds] of Object.entries(r.confusion)) {
        for (const [pred, n] of Object.entries(preds)) {
          if (truth === cause) truthN += n;
          if (pred === cause) predN += n;
          if (truth === cause && pred === cause) tp += n;
        }
      }
    }
    if (truthN === 0 && predN === 0) continue;
    const precision = predN === 0 ? 1 : tp / predN;
    const recall = truthN === 0 ? 1 : tp / truthN;
    const pass = precision >= TARGETS.precision && recall >= TARGETS.recall;
    if (!pass) failures.push(`${cause}: precision ${precision.toFixed(3)}, recall ${recall.toFixed(3)}`);
    causes.push({ cause, truthSlots: truthN, predictedSlots: predN, precision, recall, pass });
  }
  for (const r of results) for (const f of r.failures) failures.push(`${r.name}: ${f}`);
  return { causes, pass: failures.length === 0, failures };
}

const fmtS = (ms: number | null) => (ms === null ? 'never' : `${Math.round(ms / 1000)} s`);

/** A markdown table with padded columns (the layout `biome format` gives, so the file stays lint-clean). */
function table(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  const width = header.map((h, c) => Math.max(3, h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const pad = (cell: string, c: number) =>
    align[c] === 'r' ? cell.padStart(width[c] ?? 0) : cell.padEnd(width[c] ?? 0);
  const line = (cells: string[]) => `| ${cells.map(pad).join(' | ')} |`;
  const rule = `| ${width.map((w, c) => (align[c] === 'r' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`;
  return [line(header), rule, ...rows.map(line)];
}

/** The summary as markdown tables (SCENARIOS.md and the runner's output). */
export function toMarkdown(summary: Summary, results: ScenarioResult[]): string {
  const lines: string[] = ['## Per cause (rig-intervals, all scenarios)', ''];
  lines.push(
    ...table(
      ['cause', 'truth', 'predicted', 'precision', 'recall', 'target met'],
      ['l', 'r', 'r', 'r', 'r', 'l'],
      summary.causes.map((c) => [
        c.cause,
        String(c.truthSlots),
        String(c.predictedSlots),
        c.precision.toFixed(3),
        c.recall.toFixed(3),
        c.pass ? 'yes' : '**no**',
      ]),
    ),
  );
  lines.push('', '## Per scenario', '');
  lines.push(
    ...table(
      ['scenario', 'result', 'time to detect (limit)', 'attribution error', 'conn/hw confusions', 'notes'],
      ['l', 'l', 'l', 'r', 'r', 'l'],
      results.map((r) => [
        r.name,
        r.pass ? 'pass' : '**FAIL**',
        r.detections
          .map((d) =>
            d.cause === 'ok' && !d.silent
              ? `${d.kind}: ${d.ok ? 'no false state' : 'false state'}`
              : `${d.kind}: ${fmtS(d.detectMs)} (${fmtS(d.limitMs)})`,
          )
          .join('; ') || '-',
        `${(r.attributionError * 100).toFixed(2)} %`,
        String(r.connHwConfusions),
        r.failures.join('; ') || '-',
      ]),
    ),
  );
  lines.push('');
  return lines.join('\n');
}
