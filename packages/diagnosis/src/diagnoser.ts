/**
 * The incremental diagnosis: memory (inventory, learned baselines, hysteresis, silence gaps) around
 * the per-sample rules of classify.ts. Pure: no I/O, no clock; every call takes `nowMs` (the
 * collector's clock) and returns an Outcome the caller persists. State is plain JSON
 * (`exportState()` / `importState()`).
 */
import type { AgentState, Birth, Report, RigSample } from '@hashwatch/protocol';
import { classifySample, type Neighbourhood, poolTrouble, uplinkFromProbes, type Verdict } from './classify.js';
import { type DiagnosisConfig, diagnosisConfig } from './config.js';
import {
  type AccountingRow,
  type Cause,
  type Evidence,
  emptyOutcome,
  type Incident,
  type Outcome,
  type Scope,
  type State,
} from './types.js';

/** One interval of one rig, kept so its row can be rewritten when its label changes. */
interface Slot {
  ts: number;
  durationMs: number;
  expectedHs: number;
  hashrateHs: number;
  powerW: number | null;
}

/**
 * A gap slot a return with a new boot labelled from the rig's uptime: a guess, not evidence. What
 * the guessed row put on its label (`deficit`, `energy`) is kept so the spooled report that covers
 * the slot later can take it back out of the gap's tally when its evidence replaces the row.
 */
interface GuessedSlot {
  ts: number;
  state: State;
  deficit: number;
  energy: number;
}

interface RigMem {
  site: string;
  host: string;
  rig: string;
  nominalHs: number;
  nominalPowerW: number | null;
  feed: string | null;
  rack: string | null;
  baseline: number;
  healthySamples: number;
  state: State;
  sinceMs: number;
  evidence: Evidence[];
  pending: { state: State; evidence: Evidence[]; slots: Slot[] } | null;
  /** End of the last covered interval on the accounting axis; null before the first sample. */
  cursorMs: number | null;
  reachable: boolean;
  poolTrouble: boolean;
  incidentId: string | null;
  /** Unknown slots of the current silence gap not yet relabelled, and the relabels so far. */
  gapSlots: number[];
  /**
   * Slots of the current gap relabelled from uptime across a new boot, still open to the spool: the
   * agent's spool survives its restart and replays after the first live report, and its evidence
   * replaces the guess. At most `max_gap_slots`, like `gapSlots`.
   */
  guessedSlots: GuessedSlot[];
  gapTally: Partial<Record<State, { n: number; deficit: number; energy: number }>>;
  gapIncidentId: string | null;
  /** Hysteresis track of the backfill: the label so far and the slots awaiting confirmation. */
  hist: {
    state: State;
    pendingState: State | null;
    /** `guess`: the slot's row is a guess from uptime rather than `unknown`. */
    pending: { slotTs: number; slot: Slot; guess?: GuessedSlot }[];
  };
}

interface HostMem {
  site: string;
  host: string;
  bootId: string | null;
  conn: number;
  intervalMs: number;
  hostUptimeS: number | null;
  lastSeenMs: number | null;
  presence: 'online' | 'offline';
  /** Collector clock minus agent clock, applied to the accounting axis when beyond tolerance. */
  clockOffsetMs: number;
  silent: boolean;
  gapNewBoot: boolean;
  rigs: string[];
  state: State;
  sinceMs: number;
  incidentId: string | null;
  gapIncidentId: string | null;
}

interface GroupCount {
  down: number;
  size: number;
}

/**
 * What the last report of every rig of a site said, as counts: a rig's neighbourhood. Kept up to date
 * as rigs change rather than recounted, so that a report costs its own rigs and not its site's.
 * Derived from the rigs' memory; rebuilt on import, never exported.
 */
interface SiteTally {
  feeds: Map<string, GroupCount>;
  racks: Map<string, GroupCount>;
  /** Rigs whose last sample answered, and those of them whose pool was in trouble. */
  reachable: number;
  trouble: number;
}

/**
 * The site as one report sees it: the tally with the report's own rigs counted from its samples.
 * Holds a copy of every feed and rack a rig of the report is in, so it stays as it was while the
 * report's rigs update the tally one by one.
 */
interface SiteContext {
  feeds: Map<string, GroupCount>;
  racks: Map<string, GroupCount>;
  trouble: number;
  reachable: number;
}

/**
 * A host's rigs by state, in the order each state first appears in `HostMem.rigs`: the roll-up's
 * evidence lists states in that order, and a site's lists them as its hosts' do, host by host.
 */
interface HostTally {
  counts: Map<State, number>;
  rigs: number;
}

interface SiteMem {
  site: string;
  hosts: string[];
  state: State;
  sinceMs: number;
  incidentId: string | null;
  gapIncidentId: string | null;
}

/** The serialisable memory of a Diagnoser (`exportState()`); treat as opaque, versioned. */
export interface DiagnoserState {
  version: 1;
  sites: SiteMem[];
  hosts: HostMem[];
  rigs: RigMem[];
  incidents: Incident[];
}

/** Presence as carried by the `state` topic (the subset the diagnosis reads). */
export type Presence = Pick<AgentState, 'status' | 'reason' | 'boot_id' | 'conn'>;

const HASHING: ReadonlySet<State> = new Set(['ok', 'degraded', 'hardware_fault']);
/** Tie-break among causes in a roll-up: the most specific explanation first. */
const SEVERITY: State[] = [
  'power_loss',
  'connectivity_loss',
  'pool_outage',
  'unreachable',
  'hardware_fault',
  'degraded',
  'unknown',
];

const hostKey = (site: string, host: string) => `${site}/${host}`;
const rigKey = (site: string, host: string, rig: string) => `${site}/${host}/${rig}`;

/** Moves one rig in or out of a feed or rack; an emptied group is dropped, as a walk would not meet it. */
function bump(groups: Map<string, GroupCount>, id: string, size: number, down: number): void {
  const g = groups.get(id) ?? { down: 0, size: 0 };
  g.size += size;
  g.down += down;
  if (g.size === 0) groups.delete(id);
  else groups.set(id, g);
}

/**
 * Call on every committed report, birth and presence change, and on a timer (`tick`) for silence.
 * Each call returns what changed; nothing is retained for the caller to fetch later.
 */
export class Diagnoser {
  readonly config: DiagnosisConfig;
  private sites = new Map<string, SiteMem>();
  private hosts = new Map<string, HostMem>();
  private rigs = new Map<string, RigMem>();
  private incidents = new Map<string, Incident>();
  private out: Outcome = emptyOutcome();
  private touched = new Set<string>();
  // Derived from the maps above, never exported: importState() rebuilds them.
  private siteTallies = new Map<string, SiteTally>();
  /** By host key; a host whose rigs changed state or membership has none until its next roll-up. */
  private hostTallies = new Map<string, HostTally>();
  /** `Incident.rigs` as a set, built on first use: the array alone made every accounting row O(rigs). */
  private incidentRigs = new WeakMap<Incident, Set<string>>();
  /**
   * `hostRigs()` per host, valid while `rigsGen` and the host's `rigs` array are unchanged: built on
   * every report, the list and its keys were a sixth of what the diagnosis allocated per report.
   */
  private hostRigsCache = new WeakMap<HostMem, { gen: number; ids: string[]; length: number; mems: RigMem[] }>();
  /** Bumped whenever `rigs` gains, loses or replaces an entry. */
  private rigsGen = 0;
  /** Bumped by every call that may change the memory: a piecewise export checks it between pieces. */
  private epoch = 0;

  constructor(config: Partial<DiagnosisConfig> = {}) {
    this.config = diagnosisConfig(config);
  }

  /** Inventory and boot facts. A new boot_id while silent marks the gap as crossing a restart. */
  observeBirth(site: string, host: string, birth: Birth, nowMs: number): Outcome {
    const h = this.host(site, host, birth.interval_ms);
    if (h.bootId === birth.boot_id && birth.conn < h.conn) return this.flush(); // stale
    if (h.bootId !== null && h.bootId !== birth.boot_id && h.silent) h.gapNewBoot = true;
    h.bootId = birth.boot_id;
    h.conn = birth.conn;
    h.intervalMs = birth.interval_ms;
    h.hostUptimeS = birth.host.uptime_s;
    h.presence = 'online';
    const ids = new Set<string>();
    for (const inv of birth.rigs) {
      ids.add(inv.id);
      const r = this.rig(site, host, inv.id, inv.nominal_hashrate_hs);
      r.nominalHs = inv.nominal_hashrate_hs;
      r.nominalPowerW = inv.nominal_power_w ?? null;
      const feed = inv.feed ?? null;
      const rack = inv.rack ?? null;
      if (r.feed !== feed || r.rack !== rack) {
        this.countRig(r, -1);
        r.feed = feed;
        r.rack = rack;
        this.countRig(r, 1);
      }
    }
    // Rigs removed from the inventory leave the roll-ups (their history stays in the store).
    for (const id of h.rigs.filter((x) => !ids.has(x))) {
      const r = this.rigs.get(rigKey(site, host, id));
      if (r) {
        this.setState('rig', r, 'ok', nowMs, nowMs, [{ signal: 'inventory', detail: 'rig removed' }]);
        this.countRig(r, -1);
      }
      this.rigs.delete(rigKey(site, host, id));
      this.rigsGen++;
      this.hostTallies.delete(hostKey(site, host));
    }
    h.rigs = h.rigs.filter((x) => ids.has(x));
    this.rollup(site, nowMs, nowMs);
    return this.flush();
  }

  /** MQTT presence. `offline` (Last Will or clean stop) silences the host at once. */
  observePresence(site: string, host: string, presence: Presence, nowMs: number): Outcome {
    const h = this.hosts.get(hostKey(site, host));
    if (!h) return this.flush();
    const stale =
      (h.bootId !== null && presence.boot_id !== h.bootId && presence.status === 'offline') ||
      (presence.boot_id === h.bootId && presence.conn < h.conn);
    if (stale) return this.flush();
    h.presence = presence.status;
    if (presence.status === 'offline' && !h.silent) {
      this.silence(h, nowMs, {
        signal: 'presence',
        detail: presence.reason === 'shutdown' ? 'agent stopped cleanly' : 'agent connection lost (Last Will)',
      });
    }
    return this.flush();
  }

  /**
   * One committed report, live or replayed from the spool (`historical: true`). `behind`: the
   * caller may be reading reports late (see `tick`), so a report older than `nowMs` says nothing
   * about the agent's clock: the host's clock offset is not re-estimated from it.
   */
  observeReport(
    site: string,
    host: string,
    report: Report,
    nowMs: number,
    options: { behind?: boolean } = {},
  ): Outcome {
    const h = this.host(site, host, report.interval_ms);
    if (report.historical) {
      this.historical(h, report, nowMs);
      return this.flush();
    }
    const rawOffset = nowMs - report.ts;
    if (!options.behind && Math.abs(rawOffset - h.clockOffsetMs) > this.config.skew_tolerance_ms) {
      h.clockOffsetMs = Math.abs(rawOffset) > this.config.skew_tolerance_ms ? rawOffset : 0;
    }
    const ts = report.ts + h.clockOffsetMs;
    h.lastSeenMs = nowMs;
    h.presence = 'online';
    h.intervalMs = report.interval_ms;
    const lastCovered = this.hostCursor(h);
    if (!h.silent && lastCovered !== null && ts - lastCovered >= this.config.silence_intervals * report.interval_ms) {
      // The host fell quiet and came back between two ticks (or its rigs were accounted from a spool
      // that ends far back): without the silence a tick would have opened, the unknown rows of the
      // gap would belong to no incident, and neither would the causes its backfill relabels them to.
      this.silence(
        h,
        nowMs,
        { signal: 'silence', detail: `no report for ${Math.round((ts - lastCovered) / 1000)} s` },
        lastCovered,
      );
    }
    const returning = h.silent;
    const acrossBoot = returning && h.gapNewBoot;
    if (h.silent) {
      this.fillUnknown(h, ts);
      h.silent = false;
    }
    const uplink = uplinkFromProbes(report.probes, this.config);
    // Rigs first seen in this report must be registered before the site context counts them.
    const mems = report.rigs.map((sample) =>
      this.rig(site, host, sample.rig, sample.hashrate_ideal_hs ?? sample.hashrate_hs ?? 0),
    );
    const ctx = this.siteContext(report.rigs, mems, report.ts, site);
    for (let i = 0; i < report.rigs.length; i++) {
      const sample = report.rigs[i] as RigSample;
      const r = mems[i] as RigMem;
      if (r.cursorMs !== null && ts < r.cursorMs - report.interval_ms / 2) continue; // duplicate / out of order
      if (r.cursorMs !== null && ts - r.cursorMs >= this.config.silence_intervals * report.interval_ms) {
        // One rig missing from its host's reports: its own gap, with the incident its backfill relabels.
        this.openGap(r, r.cursorMs, nowMs, { signal: 'silence', detail: 'rig missing from its reports' });
        this.fillUnknown(h, ts);
      }
      const v = classifySample(sample, report.ts, uplink, this.expectation(r), this.neighbours(r, ctx), this.config);
      this.setReach(r, sample, report.ts);
      this.learn(r, v);
      this.live(
        r,
        v,
        {
          ts,
          durationMs: report.interval_ms,
          expectedHs: this.expectedHs(r),
          hashrateHs: v.hashrateHs,
          powerW: v.powerW,
        },
        nowMs,
      );
    }
    this.rollup(site, nowMs, ts);
    // After the live samples have closed the gap incidents: a `void` emitted while they were still
    // open would be followed by their `close`, and that upsert would bring the withdrawn incident back.
    if (acrossBoot) this.relabelAcrossBoot(h, report, ts);
    else if (returning && this.hostRigs(h).some((r) => Object.keys(r.gapTally).length > 0)) this.relabelGapIncidents(h);
    return this.flush();
  }

  /**
   * Silence detection: hosts quiet for `silence_intervals` become unknown; gaps fill with unknown rows.
   * `behind`: the caller may be reading reports late (a saturated collector reads its sockets
   * late, so a host still reporting looks quiet): no host is newly judged silent by this tick;
   * hosts already silent keep filling their gap. Silence is judged again once it is false.
   */
  tick(nowMs: number, options: { behind?: boolean } = {}): Outcome {
    for (const h of this.hosts.values()) {
      const quietMs = h.lastSeenMs === null ? 0 : nowMs - h.lastSeenMs;
      if (
        !options.behind &&
        !h.silent &&
        h.lastSeenMs !== null &&
        quietMs > this.config.silence_intervals * h.intervalMs
      ) {
        this.silence(h, nowMs, {
          signal: 'silence',
          detail: `no report for ${Math.round(quietMs / 1000)} s (> ${this.config.silence_intervals} intervals)`,
        });
      }
      if (h.silent) this.fillUnknown(h, nowMs);
    }
    return this.flush();
  }

  /** Current state of a rig, host (`site/host`) or site, or undefined. */
  stateOf(scope: Scope, id: string): { state: State; sinceMs: number } | undefined {
    const m = scope === 'rig' ? this.rigs.get(id) : scope === 'host' ? this.hosts.get(id) : this.sites.get(id);
    return m ? { state: m.state, sinceMs: m.sinceMs } : undefined;
  }

  /** Open incidents (and closed ones still awaiting a gap relabel). */
  openIncidents(): Incident[] {
    return [...this.incidents.values()].filter((i) => i.endMs === null).map((i) => structuredClone(i));
  }

  exportState(): DiagnoserState {
    return structuredClone(this.stateView());
  }

  /**
   * `exportState()` as JSON text, for persisting: the text is already a copy, so the deep clone is
   * skipped (at 50k rigs clone plus stringify blocked the collector for over a second).
   */
  exportStateJson(): string {
    return JSON.stringify(this.stateView());
  }

  /**
   * `exportStateJson()`'s text in pieces of at most `recordsPerPiece` sites, hosts, rigs or
   * incidents each: joined, they are that text byte for byte. Lets a caller spread the work over
   * several turns of its event loop (at 50,000 rigs the text is ~25 MB and ~100–170 ms of work).
   * The pieces are one moment's memory only if nothing observes or ticks until the last one has
   * been taken: the caller holds those calls meanwhile, and a call that slips through makes the
   * next piece throw rather than save a mix of two moments.
   */
  *exportStateJsonPieces(recordsPerPiece = 1024): Generator<string, void, undefined> {
    if (!(recordsPerPiece >= 1)) throw new RangeError(`recordsPerPiece must be at least 1, got ${recordsPerPiece}`);
    const epoch = this.epoch;
    const view = this.stateView();
    yield '{"version":1';
    for (const key of ['sites', 'hosts', 'rigs', 'incidents'] as const) {
      const list: readonly unknown[] = view[key];
      let piece = `,"${key}":[`;
      for (let i = 0; i < list.length; i += recordsPerPiece) {
        if (this.epoch !== epoch) throw new Error('The diagnosis memory changed during a piecewise export');
        const json = JSON.stringify(list.slice(i, i + recordsPerPiece));
        // The slice's own brackets go; a comma joins it to the previous slice.
        piece += `${i === 0 ? '' : ','}${json.slice(1, -1)}`;
        yield piece;
        piece = '';
      }
      yield `${piece}]`;
    }
    yield '}';
  }

  /** The live memory shaped as a DiagnoserState: shares objects with the Diagnoser, never hand out. */
  private stateView(): DiagnoserState {
    return {
      version: 1 as const,
      sites: [...this.sites.values()],
      hosts: [...this.hosts.values()],
      rigs: [...this.rigs.values()],
      incidents: [...this.incidents.values()],
    };
  }

  importState(state: DiagnoserState): void {
    if (state.version !== 1) throw new Error(`Diagnosis state version ${String(state.version)} is not supported`);
    const copy = structuredClone(state);
    this.epoch++;
    this.sites = new Map(copy.sites.map((s) => [s.site, s]));
    this.hosts = new Map(copy.hosts.map((h) => [hostKey(h.site, h.host), h]));
    this.rigs = new Map(copy.rigs.map((r) => [rigKey(r.site, r.host, r.rig), r]));
    // A state saved before guessed slots were remembered has none.
    for (const r of this.rigs.values()) r.guessedSlots ??= [];
    this.rigsGen++;
    this.incidents = new Map(copy.incidents.map((i) => [i.id, i]));
    this.incidentRigs = new WeakMap();
    this.hostTallies.clear();
    this.siteTallies.clear();
    // The rigs a site's walk would meet, as siteContext() used to walk them on every report.
    for (const s of this.sites.values())
      for (const hostId of s.hosts)
        for (const rid of this.hosts.get(hostKey(s.site, hostId))?.rigs ?? []) {
          const r = this.rigs.get(rigKey(s.site, hostId, rid));
          if (r) this.countRig(r, 1);
        }
  }

  // ---- memory -------------------------------------------------------------------------------

  private host(site: string, host: string, intervalMs: number): HostMem {
    const key = hostKey(site, host);
    let h = this.hosts.get(key);
    if (!h) {
      h = {
        site,
        host,
        bootId: null,
        conn: 0,
        intervalMs,
        hostUptimeS: null,
        lastSeenMs: null,
        presence: 'online',
        clockOffsetMs: 0,
        silent: false,
        gapNewBoot: false,
        rigs: [],
        state: 'unknown',
        sinceMs: 0,
        incidentId: null,
        gapIncidentId: null,
      };
      this.hosts.set(key, h);
      let s = this.sites.get(site);
      if (!s) {
        s = { site, hosts: [], state: 'unknown', sinceMs: 0, incidentId: null, gapIncidentId: null };
        this.sites.set(site, s);
      }
      s.hosts.push(host);
    }
    return h;
  }

  private rig(site: string, host: string, rig: string, nominalHs: number): RigMem {
    const key = rigKey(site, host, rig);
    let r = this.rigs.get(key);
    if (!r) {
      r = {
        site,
        host,
        rig,
        nominalHs,
        nominalPowerW: null,
        feed: null,
        rack: null,
        baseline: 1,
        healthySamples: 0,
        state: 'unknown',
        sinceMs: 0,
        evidence: [],
        pending: null,
        cursorMs: null,
        reachable: true,
        poolTrouble: false,
        incidentId: null,
        gapSlots: [],
        guessedSlots: [],
        gapTally: {},
        gapIncidentId: null,
        hist: { state: 'ok', pendingState: null, pending: [] },
      };
      this.rigs.set(key, r);
      this.rigsGen++;
      const h = this.hosts.get(hostKey(site, host));
      if (h) {
        if (!h.rigs.includes(rig)) h.rigs.push(rig);
        this.countRig(r, 1);
        this.hostTallies.delete(hostKey(site, host));
      }
    }
    return r;
  }

  /** Adds (`sign` 1) or withdraws (-1) a rig's share of its site's tally. */
  private countRig(r: RigMem, sign: 1 | -1): void {
    let t = this.siteTallies.get(r.site);
    if (!t) {
      t = { feeds: new Map(), racks: new Map(), reachable: 0, trouble: 0 };
      this.siteTallies.set(r.site, t);
    }
    const down = r.reachable ? 0 : sign;
    if (r.feed !== null && r.feed !== undefined) bump(t.feeds, r.feed, sign, down);
    if (r.rack !== null && r.rack !== undefined) bump(t.racks, r.rack, sign, down);
    if (r.reachable) {
      t.reachable += sign;
      if (r.poolTrouble) t.trouble += sign;
    }
  }

  /** What a live sample says of the rig for its neighbours' next reports. */
  private setReach(r: RigMem, sample: RigSample, reportTs: number): void {
    const reachable = sample.reachable;
    const trouble = reachable && poolTrouble(sample, reportTs, this.config) !== undefined;
    if (r.reachable === reachable && r.poolTrouble === trouble) return;
    this.countRig(r, -1);
    r.reachable = reachable;
    r.poolTrouble = trouble;
    this.countRig(r, 1);
  }

  private expectedHs(r: RigMem): number {
    const b = Math.min(this.config.baseline_max_ratio, Math.max(this.config.baseline_min_ratio, r.baseline));
    return r.nominalHs * b;
  }

  private expectation(r: RigMem) {
    return { nominalHs: r.nominalHs, nominalPowerW: r.nominalPowerW, expectedHs: this.expectedHs(r), current: r.state };
  }

  /** Learns hashrate/nominal only from healthy samples of a confirmed-ok rig, never from a fault. */
  private learn(r: RigMem, v: Verdict): void {
    if (!v.healthy || r.state !== 'ok' || r.pending !== null || r.nominalHs <= 0) return;
    const x = v.hashrateHs / r.nominalHs;
    r.healthySamples += 1;
    let alpha = Math.max(1 / r.healthySamples, this.config.baseline_alpha);
    if (r.healthySamples > this.config.baseline_warmup_samples) {
      alpha = this.config.baseline_alpha / (x < r.baseline ? this.config.baseline_down_slowdown : 1);
    }
    r.baseline += alpha * (x - r.baseline);
  }

  /**
   * What the rest of the site looks like for this report: the site's tally, with the rigs of this
   * report counted from its samples instead of from their previous report. Costs the report's rigs,
   * not the site's (a walk over the site per report was O(site) for every 200-rig report).
   */
  /**
   * The site's counts as they will be once this report's samples count: `mems[i]` is the rig of
   * `samples[i]`, undefined for a rig the site does not know yet.
   */
  private siteContext(
    samples: readonly RigSample[],
    mems: ReadonlyArray<RigMem | undefined>,
    reportTs: number,
    site: string,
  ): SiteContext {
    const t = this.siteTallies.get(site);
    const ctx: SiteContext = {
      feeds: new Map(),
      racks: new Map(),
      trouble: t?.trouble ?? 0,
      reachable: t?.reachable ?? 0,
    };
    const copy = (own: Map<string, GroupCount>, tally: Map<string, GroupCount> | undefined, id: string) => {
      let g = own.get(id);
      if (!g) {
        const at = tally?.get(id);
        g = { down: at?.down ?? 0, size: at?.size ?? 0 };
        own.set(id, g);
      }
      return g;
    };
    // A rig listed twice counts once, by its last sample (what the rest of the report leaves).
    const counted = new Set<RigMem>();
    for (let i = samples.length - 1; i >= 0; i--) {
      // A rig the site does not know yet is in no count, as it was in no walk over the site.
      const o = mems[i];
      if (!o || counted.has(o)) continue;
      counted.add(o);
      const sample = samples[i] as RigSample;
      const reach = sample.reachable;
      const trouble = reach && poolTrouble(sample, reportTs, this.config) !== undefined;
      const shift = (reach ? 0 : 1) - (o.reachable ? 0 : 1);
      if (o.feed !== null && o.feed !== undefined) copy(ctx.feeds, t?.feeds, o.feed).down += shift;
      if (o.rack !== null && o.rack !== undefined) copy(ctx.racks, t?.racks, o.rack).down += shift;
      ctx.reachable += (reach ? 1 : 0) - (o.reachable ? 1 : 0);
      ctx.trouble += (trouble ? 1 : 0) - (o.reachable && o.poolTrouble ? 1 : 0);
    }
    return ctx;
  }

  /**
   * Only ever asked about rigs of the report that built `ctx`, whose feeds and racks it holds.
   * Plain assignments: conditional object spreads here cost ~2 µs per rig, a quarter of a report.
   */
  private neighbours(r: RigMem, ctx: SiteContext): Neighbourhood {
    const near: Neighbourhood = { sitePoolTroubleFraction: ctx.reachable > 0 ? ctx.trouble / ctx.reachable : 0 };
    const feed = r.feed === null ? undefined : ctx.feeds.get(r.feed);
    if (feed && r.feed !== null) near.feed = { id: r.feed, down: feed.down, size: feed.size };
    const rack = r.rack === null ? undefined : ctx.racks.get(r.rack);
    if (rack && r.rack !== null) near.rack = { id: r.rack, down: rack.down, size: rack.size };
    return near;
  }

  // ---- hysteresis and accounting ------------------------------------------------------------

  private row(r: RigMem, s: Slot, state: State): AccountingRow {
    // Hashes that cannot reach a pool (or are not known to) are lost: only hashing states count.
    const actual = HASHING.has(state) ? s.hashrateHs : 0;
    const energy = state === 'power_loss' ? 0 : s.powerW === null ? null : (s.powerW * s.durationMs) / 1000;
    return {
      site: r.site,
      host: r.host,
      rig: r.rig,
      ts: s.ts,
      duration_ms: s.durationMs,
      state,
      expected_hs: s.expectedHs,
      actual_hs: actual,
      deficit_hashes: (Math.max(0, s.expectedHs - actual) * s.durationMs) / 1000,
      energy_j: energy,
    };
  }

  /** Emits a row whose label is settled and adds it to the open incidents of its scopes. */
  private emitFinal(r: RigMem, s: Slot, state: State): AccountingRow {
    const row = this.row(r, s, state);
    this.out.rows.push(row);
    const scopes = [
      r.incidentId,
      this.hosts.get(hostKey(r.site, r.host))?.incidentId,
      this.sites.get(r.site)?.incidentId,
    ];
    const rid = `${r.host}/${r.rig}`;
    for (const id of scopes) {
      const inc = id ? this.incidents.get(id) : undefined;
      if (!inc || inc.endMs !== null || row.ts < inc.startMs) continue;
      inc.deficitHashes += row.deficit_hashes;
      inc.energyJ += row.energy_j ?? 0;
      if (state !== 'ok') {
        let seen = this.incidentRigs.get(inc);
        if (!seen) {
          seen = new Set(inc.rigs);
          this.incidentRigs.set(inc, seen);
        }
        if (!seen.has(rid)) {
          seen.add(rid);
          inc.rigs.push(rid);
        }
      }
      this.touched.add(inc.id);
    }
    return row;
  }

  /** Live sample through the hysteresis: `confirm_reports` agreeing samples switch state, backdated. */
  private live(r: RigMem, v: Verdict, s: Slot, nowMs: number): void {
    r.cursorMs = s.ts + s.durationMs;
    // Out of `unknown` any state is better than none, except a hardware verdict, which still waits
    // for confirmation (a rig's first sample after a start or a gap can be a glitch).
    if (
      (r.state === 'unknown' && this.confirmFor(v.state) <= this.config.confirm_reports) ||
      this.confirmFor(v.state) <= 1
    ) {
      const pending = r.pending && r.pending.state !== v.state ? r.pending.slots : [];
      r.pending = null;
      this.setState('rig', r, v.state, pending[0]?.ts ?? s.ts, nowMs, v.evidence);
      for (const p of pending) this.emitFinal(r, p, v.state);
      this.emitFinal(r, s, v.state);
      return;
    }
    if (v.state === r.state) {
      // A lone dissenting sample was noise: its rows keep the confirmed label.
      if (r.pending) for (const p of r.pending.slots) this.emitFinal(r, p, r.state);
      r.pending = null;
      r.evidence = v.evidence;
      this.emitFinal(r, s, r.state);
      return;
    }
    if (r.pending && r.pending.state !== v.state) {
      for (const p of r.pending.slots) this.emitFinal(r, p, r.state);
      r.pending = null;
    }
    if (!r.pending) r.pending = { state: v.state, evidence: v.evidence, slots: [] };
    r.pending.slots.push(s);
    r.pending.evidence = v.evidence;
    if (r.pending.slots.length < this.confirmFor(v.state)) {
      this.out.rows.push({ ...this.row(r, s, r.state), provisional: true }); // rewritten on confirmation
      return;
    }
    const { slots, evidence, state } = r.pending;
    r.pending = null;
    this.setState('rig', r, state, slots[0]?.ts ?? s.ts, nowMs, evidence);
    for (const p of slots) this.emitFinal(r, p, state);
  }

  private confirmFor(state: State): number {
    return state === 'hardware_fault' || state === 'degraded'
      ? this.config.confirm_reports_hardware
      : this.config.confirm_reports;
  }

  private setState(
    scope: Scope,
    m: RigMem | HostMem | SiteMem,
    to: State,
    sinceMs: number,
    nowMs: number,
    evidence: Evidence[],
  ): void {
    const from = m.state;
    if ('evidence' in m) m.evidence = evidence;
    if (from === to) return;
    if ('rig' in m) this.hostTallies.delete(hostKey(m.site, m.host));
    const { id, host, rig } = this.names(m);
    if (m.incidentId) {
      const inc = this.incidents.get(m.incidentId);
      if (inc) {
        inc.endMs = sinceMs;
        this.out.incidents.push({ action: 'close', incident: structuredClone(inc) });
        this.touched.delete(inc.id);
        // A gap incident stays in memory after it closes: the backfill may still relabel it.
        if (m.gapIncidentId !== inc.id) this.incidents.delete(inc.id);
      }
      m.incidentId = null;
    }
    if (to !== 'ok') this.openIncident(scope, m, to, sinceMs, evidence);
    m.state = to;
    m.sinceMs = sinceMs;
    this.out.changes.push({
      scope,
      id,
      site: m.site,
      ...(host !== undefined ? { host } : {}),
      ...(rig !== undefined ? { rig } : {}),
      from,
      to,
      sinceMs,
      atMs: nowMs,
      evidence,
    });
  }

  private names(m: RigMem | HostMem | SiteMem): { id: string; host?: string; rig?: string } {
    const host = 'host' in m ? m.host : undefined;
    const rig = 'rig' in m ? m.rig : undefined;
    const id =
      rig !== undefined ? rigKey(m.site, host ?? '', rig) : host !== undefined ? hostKey(m.site, host) : m.site;
    return { id, ...(host !== undefined ? { host } : {}), ...(rig !== undefined ? { rig } : {}) };
  }

  private openIncident(
    scope: Scope,
    m: RigMem | HostMem | SiteMem,
    cause: State,
    sinceMs: number,
    evidence: Evidence[],
  ): void {
    const { id, host, rig } = this.names(m);
    const inc: Incident = {
      id: `${id}@${sinceMs}`,
      scope,
      scopeId: id,
      site: m.site,
      ...(host !== undefined ? { host } : {}),
      ...(rig !== undefined ? { rig } : {}),
      cause: cause as Cause,
      startMs: sinceMs,
      endMs: null,
      rigs: rig !== undefined ? [`${host}/${rig}`] : [],
      deficitHashes: 0,
      energyJ: 0,
      evidence,
    };
    this.incidents.set(inc.id, inc);
    m.incidentId = inc.id;
    this.out.incidents.push({ action: 'open', incident: structuredClone(inc) });
  }

  // ---- silence, gaps and relabelling ----------------------------------------------------------

  /** `sinceMs`: when the host's side of the gap began, if known better than now (a late-found silence). */
  private silence(h: HostMem, nowMs: number, why: Evidence, sinceMs = nowMs): void {
    h.silent = true;
    h.gapNewBoot = false;
    // A rig never accounted for (the agent was lost before a report got through) has no cursor:
    // what the collector knows of it ends now.
    for (const r of this.hostRigs(h)) this.openGap(r, r.cursorMs ?? nowMs, nowMs, why);
    this.rollup(h.site, nowMs, sinceMs);
    this.openScopeGaps(h, sinceMs, why);
  }

  /**
   * Points the host and site at their gap incidents. A host (site) never heard from is `unknown`
   * already, so the roll-up opened nothing: it gets its incident here, for the backfill to relabel.
   */
  private openScopeGaps(h: HostMem, sinceMs: number, why: Evidence): void {
    if (h.state === 'unknown' && h.incidentId === null) this.openIncident('host', h, 'unknown', sinceMs, [why]);
    this.retireGapIncident(h, h.incidentId);
    const s = this.sites.get(h.site);
    if (s?.state !== 'unknown') return;
    if (s.incidentId === null) this.openIncident('site', s, 'unknown', sinceMs, [why]);
    if (s.gapIncidentId !== s.incidentId) this.retireGapIncident(s, s.incidentId);
  }

  /**
   * Makes a rig `unknown` from `sinceMs` with the incident its backfill will relabel. A rig that was
   * never heard from is `unknown` already but has no incident yet: it gets one, or the causes its
   * spool reveals would be accounted to no incident at all.
   */
  private openGap(r: RigMem, sinceMs: number, nowMs: number, why: Evidence): void {
    if (r.pending) for (const p of r.pending.slots) this.emitFinal(r, p, r.state);
    r.pending = null;
    r.gapSlots = [];
    r.guessedSlots = [];
    r.gapTally = {};
    r.hist = { state: r.state === 'unknown' ? 'ok' : r.state, pendingState: null, pending: [] };
    r.cursorMs ??= sinceMs;
    this.setState('rig', r, 'unknown', sinceMs, nowMs, [why]);
    if (r.incidentId === null) this.openIncident('rig', r, 'unknown', sinceMs, [why]);
    this.retireGapIncident(r, r.incidentId);
  }

  /** The end of the host's last covered interval: where a gap in its reports begins. */
  /** The newest cursor of the host's rigs: how far its accounting reaches. */
  private hostCursor(h: HostMem): number | null {
    let last: number | null = null;
    for (const r of this.hostRigs(h))
      if (r.cursorMs !== null && (last === null || r.cursorMs > last)) last = r.cursorMs;
    return last;
  }

  /** The host's rigs that the diagnosis knows, in inventory order. Shared: do not modify. */
  private hostRigs(h: HostMem): readonly RigMem[] {
    const cached = this.hostRigsCache.get(h);
    if (cached && cached.gen === this.rigsGen && cached.ids === h.rigs && cached.length === h.rigs.length) {
      return cached.mems;
    }
    const mems: RigMem[] = [];
    for (const id of h.rigs) {
      const r = this.rigs.get(rigKey(h.site, h.host, id));
      if (r) mems.push(r);
    }
    this.hostRigsCache.set(h, { gen: this.rigsGen, ids: h.rigs, length: h.rigs.length, mems });
    return mems;
  }

  /**
   * Points a scope at its new gap incident, forgetting the previous one once it is closed. A gap
   * incident is always its own scope's incident, so no other scope can still point at `prev`
   * (checking every scope here made each state change cost O(fleet)).
   */
  private retireGapIncident(m: RigMem | HostMem | SiteMem, next: string | null): void {
    const prev = m.gapIncidentId;
    m.gapIncidentId = next;
    if (prev && prev !== next && this.incidents.get(prev)?.endMs !== null) {
      this.incidents.delete(prev);
    }
  }

  /** Unknown rows for every whole interval from each rig's cursor up to `untilMs`. */
  private fillUnknown(h: HostMem, untilMs: number): void {
    for (const id of h.rigs) {
      const r = this.rigs.get(rigKey(h.site, h.host, id));
      if (!r || r.cursorMs === null) continue;
      let guard = 0;
      while (r.cursorMs + h.intervalMs <= untilMs + h.intervalMs / 2 && guard++ < this.config.max_gap_slots) {
        const slot: Slot = {
          ts: r.cursorMs,
          durationMs: h.intervalMs,
          expectedHs: this.expectedHs(r),
          hashrateHs: 0,
          powerW: null,
        };
        this.emitFinal(r, slot, 'unknown');
        r.gapSlots.push(slot.ts);
        if (r.gapSlots.length > this.config.max_gap_slots) r.gapSlots.shift();
        r.cursorMs += h.intervalMs;
      }
    }
  }

  /**
   * Replaces one unknown slot (or, with `guess`, the row guessed for it from uptime) with a relabelled
   * row and tallies it for the incident relabel.
   */
  private relabelSlot(
    r: RigMem,
    h: HostMem,
    slotTs: number,
    s: Slot,
    state: State,
    guess?: GuessedSlot,
  ): AccountingRow {
    this.out.retractions.push({ site: r.site, host: r.host, rig: r.rig, fromMs: slotTs, toMs: slotTs + 1 });
    // In the slot's place, not at the report's own ts: a report stamped a little before its slot
    // would put the row before the gap incident's start (and over the last row before the gap).
    const row = this.row(r, { ...s, ts: slotTs, durationMs: h.intervalMs }, state);
    this.out.rows.push(row);
    const t = r.gapTally[state] ?? { n: 0, deficit: 0, energy: 0 };
    t.n += 1;
    t.deficit += row.deficit_hashes;
    t.energy += row.energy_j ?? 0;
    r.gapTally[state] = t;
    if (guess) {
      // The guess leaves the tally: the gap's incidents follow the evidence.
      const g = r.gapTally[guess.state];
      if (g) {
        g.n -= 1;
        g.deficit -= guess.deficit;
        g.energy -= guess.energy;
        if (g.n <= 0) delete r.gapTally[guess.state];
      }
      return row;
    }
    const old: Slot = { ts: slotTs, durationMs: h.intervalMs, expectedHs: s.expectedHs, hashrateHs: 0, powerW: null };
    const u = r.gapTally.unknown ?? { n: 0, deficit: 0, energy: 0 };
    u.deficit -= this.row(r, old, 'unknown').deficit_hashes;
    r.gapTally.unknown = u;
    return row;
  }

  /**
   * The agent came back with a new boot. The rig's own uptime labels what no spool has covered yet:
   * rebooted inside the gap → power loss; ran through it → it hashed. A guess, kept open: the spool
   * survives the restart and replays after this live report (this boot's backlog first, then the
   * older boots'), and a spooled report that covers a guessed slot replaces its row (`historical`).
   * Slots no spool ever covers (the host was off, the agent down) keep the guess.
   */
  private relabelAcrossBoot(h: HostMem, report: Report, ts: number): void {
    const why = new Map<RigMem, Evidence>();
    for (const sample of report.rigs) {
      const r = this.rigs.get(rigKey(h.site, h.host, sample.rig));
      if (!r || r.gapSlots.length === 0 || sample.uptime_s === undefined) continue;
      const rigUpSinceMs = ts - sample.uptime_s * 1000;
      const hostRebooted = h.hostUptimeS !== null && ts - h.hostUptimeS * 1000 > (r.gapSlots[0] ?? ts);
      for (const slotTs of r.gapSlots) {
        const off = rigUpSinceMs > slotTs;
        const exp = this.expectedHs(r);
        const s: Slot = {
          ts: slotTs,
          durationMs: h.intervalMs,
          expectedHs: exp,
          hashrateHs: off ? 0 : exp,
          powerW: off ? 0 : null,
        };
        const state: State = off ? 'power_loss' : 'ok';
        const row = this.relabelSlot(r, h, slotTs, s, state);
        r.guessedSlots.push({ ts: slotTs, state, deficit: row.deficit_hashes, energy: row.energy_j ?? 0 });
        if (r.guessedSlots.length > this.config.max_gap_slots) r.guessedSlots.shift();
      }
      r.gapSlots = [];
      // On the gap's incident, not the rig: the rig's evidence is the live sample's, read just before.
      why.set(r, {
        signal: 'rig.uptime',
        detail: `rig up ${sample.uptime_s} s after the gap${hostRebooted ? '; host rebooted in the gap' : ''}`,
      });
    }
    h.gapNewBoot = false;
    this.relabelGapIncidents(h, why);
  }

  /**
   * A spooled report. Inside a silence gap it relabels the unknown slot it covers (through the
   * backfill's own hysteresis); ahead of everything the collector has accounted for the rig (the
   * spool an agent built before its first live report got through) it is the rig's newest news and
   * goes through the live track, so its causes open incidents like live ones would.
   */
  private historical(h: HostMem, report: Report, nowMs: number): void {
    const ts = report.ts + h.clockOffsetMs;
    const uplink = uplinkFromProbes(report.probes, this.config);
    const mems = report.rigs.map((sample) => this.rigs.get(rigKey(h.site, h.host, sample.rig)));
    const ctx = this.siteContext(report.rigs, mems, report.ts, h.site);
    let relabelled = false;
    let advanced = false;
    if (h.silent) {
      // A rig first listed by a birth during the silence: its gap starts with its spool.
      const why: Evidence = { signal: 'silence', detail: 'agent silent; the rig is known only from its spool' };
      for (const r of mems) {
        if (r && r.cursorMs === null) {
          this.openGap(r, ts, nowMs, why);
          this.openScopeGaps(h, ts, why);
        }
      }
      // The gap reaches now, as a tick would have made it (a rig's first gap starts only here), and
      // this report, which spool replay may have brought ahead of the ticks. A gap filled only up to
      // each report would count as covered after every one, and the backfill's hysteresis would
      // settle each unconfirmed slot back to the label before the gap.
      this.fillUnknown(h, Math.max(nowMs, ts + report.interval_ms));
    }
    for (let i = 0; i < report.rigs.length; i++) {
      const sample = report.rigs[i] as RigSample;
      const r = mems[i];
      if (!r) continue;
      const idx = r.gapSlots.findIndex((x) => Math.abs(x - ts) < report.interval_ms / 2);
      // A slot labelled from uptime across a new boot: the spool's evidence replaces the guess.
      const guessed = idx < 0 ? r.guessedSlots.findIndex((g) => Math.abs(g.ts - ts) < report.interval_ms / 2) : -1;
      const ahead = !h.silent && (r.cursorMs === null || ts >= r.cursorMs - report.interval_ms / 2);
      if (idx < 0 && guessed < 0 && !ahead) continue; // already covered: a duplicate delivery
      const v = classifySample(sample, report.ts, uplink, this.expectation(r), this.neighbours(r, ctx), this.config);
      const s: Slot = {
        ts,
        durationMs: report.interval_ms,
        expectedHs: this.expectedHs(r),
        hashrateHs: v.hashrateHs,
        powerW: v.powerW,
      };
      if (idx >= 0) {
        const slotTs = r.gapSlots[idx] as number;
        r.gapSlots.splice(idx, 1);
        this.backfill(r, h, slotTs, s, v.state);
        relabelled = true;
      } else if (guessed >= 0) {
        const [guess] = r.guessedSlots.splice(guessed, 1);
        if (guess) this.backfill(r, h, guess.ts, s, v.state, guess);
        relabelled = true;
      } else {
        this.setReach(r, sample, report.ts);
        this.learn(r, v);
        this.live(r, v, s, nowMs);
        advanced = true;
      }
    }
    if (advanced) this.rollup(h.site, nowMs, ts);
    if (relabelled) this.relabelGapIncidents(h);
  }

  /**
   * The backfill's own hysteresis, so one noisy spooled sample does not relabel a slot either.
   * `guess`: the slot's row is a guess from uptime (see `relabelAcrossBoot`), not `unknown`.
   */
  private backfill(r: RigMem, h: HostMem, slotTs: number, s: Slot, state: State, guess?: GuessedSlot): void {
    const t = r.hist;
    const flush = (label: State) => {
      for (const p of t.pending) this.relabelSlot(r, h, p.slotTs, p.slot, label, p.guess);
      t.pending = [];
      t.pendingState = null;
    };
    if (state === t.state) {
      flush(t.state);
      this.relabelSlot(r, h, slotTs, s, state, guess);
    } else {
      if (t.pendingState !== state) flush(t.state);
      t.pendingState = state;
      t.pending.push(guess ? { slotTs, slot: s, guess } : { slotTs, slot: s });
      if (t.pending.length >= this.confirmFor(state)) {
        t.state = state;
        flush(state);
      }
    }
    // The gap is covered: what is still pending is labelled by the live state it led into. (While
    // guessed slots remain, more of the spool may come: a slot a spool never covers keeps its
    // guess, and so does a pending one.)
    if (r.gapSlots.length === 0 && r.guessedSlots.length === 0 && t.pending.length > 0)
      flush(t.pendingState === r.state ? r.state : t.state);
  }

  private relabelGapIncidents(h: HostMem, rigEvidence?: ReadonlyMap<RigMem, Evidence>): void {
    const tallyOf = (rigs: readonly RigMem[]) => {
      const sum: Partial<Record<State, { n: number; deficit: number; energy: number }>> = {};
      let remaining = 0;
      let remainingDeficit = 0;
      for (const r of rigs) {
        remaining += r.gapSlots.length;
        remainingDeficit += (r.gapSlots.length * this.expectedHs(r) * h.intervalMs) / 1000;
        for (const [state, t] of Object.entries(r.gapTally) as [
          State,
          { n: number; deficit: number; energy: number },
        ][]) {
          if (state === 'unknown') continue;
          const acc = sum[state] ?? { n: 0, deficit: 0, energy: 0 };
          acc.n += t.n;
          acc.deficit += t.deficit;
          acc.energy += t.energy;
          sum[state] = acc;
        }
      }
      return { sum, remaining, remainingDeficit };
    };
    const apply = (id: string | null, rigs: readonly RigMem[], extra?: Evidence) => {
      const inc = id ? this.incidents.get(id) : undefined;
      if (!inc) return;
      const { sum, remaining, remainingDeficit } = tallyOf(rigs);
      let best: State = 'unknown';
      let bestN = remaining;
      for (const [state, t] of Object.entries(sum) as [State, { n: number }][]) {
        if (state !== 'ok' && t.n > bestN) {
          best = state;
          bestN = t.n;
        }
      }
      const nonOk = Object.entries(sum).some(([st, t]) => st !== 'ok' && (t?.n ?? 0) > 0);
      inc.deficitHashes = remainingDeficit + Object.values(sum).reduce((a, t) => a + (t?.deficit ?? 0), 0);
      inc.energyJ = Object.values(sum).reduce((a, t) => a + (t?.energy ?? 0), 0);
      if (remaining === 0 && !nonOk) {
        // Withdrawn only once the gap has ended: the `extend` or `close` of a still open incident
        // would otherwise upsert it back. Its return from silence settles it (observeReport).
        if (inc.endMs !== null) this.out.incidents.push({ action: 'void', incident: structuredClone(inc) });
        return;
      }
      inc.cause = best as Cause;
      inc.evidence = [
        { signal: 'backfill', detail: `relabelled from ${Object.keys(sum).join(', ')} evidence` },
        ...(extra ? [extra] : []),
      ];
      this.out.incidents.push({ action: 'relabel', incident: structuredClone(inc) });
    };
    const hostRigs = this.hostRigs(h);
    for (const r of hostRigs) apply(r.gapIncidentId, [r], rigEvidence?.get(r));
    apply(h.gapIncidentId, hostRigs);
    const site = this.sites.get(h.site);
    // Walking the site for an incident that is not there made every spooled report O(site).
    if (site?.gapIncidentId && this.incidents.has(site.gapIncidentId)) {
      const siteRigs = site.hosts.flatMap((host) =>
        (this.hosts.get(hostKey(h.site, host))?.rigs ?? []).flatMap(
          (id) => this.rigs.get(rigKey(h.site, host, id)) ?? [],
        ),
      );
      apply(site.gapIncidentId, siteRigs);
    }
  }

  // ---- roll-ups -----------------------------------------------------------------------------

  /** `counts` in order of each state's first rig: the evidence lists them so. */
  private rollupOf(counts: ReadonlyMap<State, number>, rigs: number): { state: State; evidence: Evidence[] } {
    if (rigs === 0) return { state: 'unknown', evidence: [] };
    let best: State | undefined;
    let bestN = 0;
    for (const s of SEVERITY) {
      const n = counts.get(s) ?? 0;
      if (n > bestN) {
        best = s;
        bestN = n;
      }
    }
    const detail = [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
    const evidence = [{ signal: 'rigs', detail: `${detail} of ${rigs} rigs` }];
    if (best !== undefined && bestN / rigs >= this.config.rollup_fraction) return { state: best, evidence };
    return { state: best === undefined ? 'ok' : 'degraded', evidence };
  }

  /**
   * Recounts only hosts whose rigs changed since their last roll-up (in a report, the reporting
   * host), then the site from its hosts' counts: O(hosts) plus the changed hosts' rigs.
   */
  private rollup(site: string, nowMs: number, ts: number): void {
    const s = this.sites.get(site);
    if (!s) return;
    const all = new Map<State, number>();
    let rigs = 0;
    for (const host of s.hosts) {
      const h = this.hosts.get(hostKey(site, host));
      if (!h) continue;
      const t = this.hostTally(h);
      // Host by host, each in its own order: the order of first appearance over the whole site.
      for (const [state, n] of t.counts) all.set(state, (all.get(state) ?? 0) + n);
      rigs += t.rigs;
      const r = h.silent ? { state: 'unknown' as State, evidence: [] } : this.rollupOf(t.counts, t.rigs);
      this.setState('host', h, r.state, ts, nowMs, r.evidence);
    }
    const r = this.rollupOf(all, rigs);
    this.setState('site', s, r.state, ts, nowMs, r.evidence);
  }

  private hostTally(h: HostMem): HostTally {
    const key = hostKey(h.site, h.host);
    let t = this.hostTallies.get(key);
    if (!t) {
      t = { counts: new Map(), rigs: 0 };
      for (const id of h.rigs) {
        const r = this.rigs.get(rigKey(h.site, h.host, id));
        if (!r) continue;
        t.counts.set(r.state, (t.counts.get(r.state) ?? 0) + 1);
        t.rigs += 1;
      }
      this.hostTallies.set(key, t);
    }
    return t;
  }

  private flush(): Outcome {
    this.epoch++;
    for (const id of this.touched) {
      const inc = this.incidents.get(id);
      if (inc) this.out.incidents.push({ action: 'extend', incident: structuredClone(inc) });
    }
    this.touched.clear();
    const out = this.out;
    this.out = emptyOutcome();
    return out;
  }
}
