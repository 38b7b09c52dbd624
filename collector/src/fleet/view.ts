/**
 * The collector's in-memory picture of the fleet right now: the latest figures of every rig, the
 * presence and uplink of every host, site roll-ups, open incidents and running totals. Ingest and
 * the diagnosis runner write it; `/metrics` renders it in one pass and the live view streams its
 * changes. Nothing here touches SQLite or the network.
 */
import { EventEmitter } from 'node:events';
import { STATES, type State } from '@hashwatch/diagnosis';
import type { AgentStats, ProbeResult, RigSample } from '@hashwatch/protocol';
import { ITEMS_PER_STEP, runToEnd } from '../slices.js';
import { copyInto } from './copy-into.js';

/** The state taxonomy of DESIGN.md "States", the names users see: owned by the diagnosis package. */
export { STATES };
export type FleetState = State;

/** Causes an incident or a deficit can be attributed to: every state except `ok`. */
export type Cause = Exclude<FleetState, 'ok'>;
export const CAUSES = STATES.filter((s) => s !== 'ok') as Cause[];

export interface RigView {
  site: string;
  host: string;
  rig: string;
  model: string;
  api: string;
  nominalHashrateHs: number;
  nominalPowerW?: number;
  feed?: string;
  rack?: string;
  state: FleetState;
  stateSinceMs: number;
  /** Why the diagnosis chose `state`, one short line per signal. */
  evidence: string[];
  /** Expected hashrate now (nominal or learned baseline), from the diagnosis. */
  expectedHashrateHs: number;
  /** The latest sample (absent until the first report); may be updated in place (`recordSample`). */
  sample?: RigSample;
}

export interface HostView {
  site: string;
  host: string;
  online: boolean;
  /** `lost` (Last Will) or `shutdown` when offline. */
  offlineReason?: 'lost' | 'shutdown';
  presenceSinceMs: number;
  bootId?: string;
  agentVersion?: string;
  state: FleetState;
  /** Agent timestamp of the newest live report. */
  lastReportTs?: number;
  /** Collector clock when the newest live report arrived. */
  lastReceivedMs?: number;
  /** Collector clock minus agent clock of the newest live report (positive = agent behind). */
  clockSkewMs?: number;
  agent?: AgentStats;
  probes: ProbeResult[];
}

export interface SiteView {
  site: string;
  state: FleetState;
  hashrateHs: number;
  expectedHashrateHs: number;
  powerW: number;
  rigsByState: Record<FleetState, number>;
  hostsOnline: number;
  hostsTotal: number;
}

export interface IncidentView {
  id: string;
  scope: 'rig' | 'host' | 'site';
  /** `site`, `site/host` or `site/host/rig`. */
  scopeId: string;
  site: string;
  cause: Cause;
  startMs: number;
  endMs?: number;
  rigsAffected: number;
  deficitHashes: number;
  energyJ: number;
  evidence: string[];
}

/** A change, as the live view streams it. */
export type FleetDelta =
  | { type: 'rig'; rig: RigView }
  | { type: 'host'; host: HostView }
  | { type: 'site'; site: SiteView }
  | { type: 'incident'; incident: IncidentView };

const rigKey = (site: string, host: string, rig: string) => `${site}/${host}/${rig}`;
const hostKey = (site: string, host: string) => `${site}/${host}`;

function emptyByState(): Record<FleetState, number> {
  return Object.fromEntries(STATES.map((s) => [s, 0])) as Record<FleetState, number>;
}

export interface FleetViewEvents {
  change: [FleetDelta];
}

/**
 * Samples this far apart (agent clock) are copied into the rig's held sample instead of kept: a
 * sample held that long has usually been promoted out of V8's young generation, and copying costs
 * ~0.4 µs per sample, which a rig reporting many times a second (a benchmark's flood) need not pay:
 * its samples die young anyway.
 */
export const IN_PLACE_AFTER_MS = 1000;

/**
 * Current state of the fleet. Mutators emit a `change` event per changed entity; readers iterate
 * the maps directly (they are never replaced, only updated).
 */
export class FleetView extends EventEmitter<FleetViewEvents> {
  readonly rigs = new Map<string, RigView>();
  readonly hosts = new Map<string, HostView>();
  readonly incidents = new Map<string, IncidentView>();
  /** Samples the view made itself and may update in place; never a caller's objects. */
  private readonly ownSamples = new WeakSet<RigSample>();
  /** Hashrate deficit in hashes since start, by cause: a Prometheus counter. */
  readonly deficitHashesByCause: Record<Cause, number> = Object.fromEntries(CAUSES.map((c) => [c, 0])) as Record<
    Cause,
    number
  >;

  constructor() {
    super();
    // Many live-view clients may listen; each is bounded by its own buffer.
    this.setMaxListeners(0);
  }

  getRig(site: string, host: string, rig: string): RigView | undefined {
    return this.rigs.get(rigKey(site, host, rig));
  }

  getHost(site: string, host: string): HostView | undefined {
    return this.hosts.get(hostKey(site, host));
  }

  /** Registers or updates a host's presence (from birth, state and the Last Will). */
  upsertHost(site: string, host: string, patch: Partial<Omit<HostView, 'site' | 'host'>>, nowMs: number): HostView {
    const key = hostKey(site, host);
    let view = this.hosts.get(key);
    if (!view) {
      view = { site, host, online: false, presenceSinceMs: nowMs, state: 'unknown', probes: [] };
      this.hosts.set(key, view);
    }
    if (patch.online !== undefined && patch.online !== view.online) view.presenceSinceMs = nowMs;
    Object.assign(view, patch);
    this.emit('change', { type: 'host', host: view });
    return view;
  }

  /** Registers or updates a rig's inventory or diagnosis (creating it in `unknown`). */
  upsertRig(
    site: string,
    host: string,
    rig: string,
    patch: Partial<Omit<RigView, 'site' | 'host' | 'rig'>>,
    nowMs: number,
  ): RigView {
    const key = rigKey(site, host, rig);
    let view = this.rigs.get(key);
    if (!view) {
      view = {
        site,
        host,
        rig,
        model: 'unknown',
        api: 'unknown',
        nominalHashrateHs: 0,
        state: 'unknown',
        stateSinceMs: nowMs,
        evidence: [],
        expectedHashrateHs: 0,
      };
      this.rigs.set(key, view);
    }
    if (patch.state !== undefined && patch.state !== view.state && patch.stateSinceMs === undefined) {
      view.stateSinceMs = nowMs;
    }
    Object.assign(view, patch);
    this.emit('change', { type: 'rig', rig: view });
    return view;
  }

  /**
   * Stores the newest sample of a rig (live reports only: backfill does not rewrite "now"). A rig
   * that reports less often than `IN_PLACE_AFTER_MS` has its sample copied into the view's own
   * copy (`copyInto`) rather than kept: held for a whole interval, each report's objects would
   * outlive the young generation (BENCHMARKS.md, finding 27). Either way the rig's `sample` may
   * change under a reader that keeps it past a turn of the event loop.
   */
  recordSample(site: string, host: string, sample: RigSample, nowMs: number): void {
    const existing = this.getRig(site, host, sample.rig);
    if (!existing) {
      this.upsertRig(site, host, sample.rig, { sample: this.ownCopy(sample) }, nowMs);
      return;
    }
    const held = existing.sample;
    if (held && held.ts > sample.ts) return;
    if (held && sample.ts - held.ts < IN_PLACE_AFTER_MS) existing.sample = sample;
    // A shape change (a rig that stops answering, a board that drops out) is rare: a new copy.
    else if (!held || !this.ownSamples.has(held) || !copyInto(held, sample)) existing.sample = this.ownCopy(sample);
    // One change per rig per report: this runs for every sample ingest commits, so it skips
    // upsertRig's second lookup and patch object.
    this.emit('change', { type: 'rig', rig: existing });
  }

  private ownCopy(sample: RigSample): RigSample {
    const copy = structuredClone(sample);
    this.ownSamples.add(copy);
    return copy;
  }

  upsertIncident(incident: IncidentView): void {
    this.incidents.set(incident.id, incident);
    this.emit('change', { type: 'incident', incident });
  }

  /** Drops closed incidents that ended before `beforeMs`, so the map stays bounded. */
  pruneIncidents(beforeMs: number): void {
    for (const [id, inc] of this.incidents)
      if (inc.endMs !== undefined && inc.endMs < beforeMs) this.incidents.delete(id);
  }

  addDeficit(cause: Cause, hashes: number): void {
    if (hashes > 0) this.deficitHashesByCause[cause] += hashes;
  }

  /** Site roll-ups, computed on demand from rigs and hosts: one pass, 7-13 ms at 50,000 rigs. */
  sites(): SiteView[] {
    return runToEnd(this.siteSteps());
  }

  /**
   * `sites()` as steps that yield every `ITEMS_PER_STEP` rigs, for a sliced walk (the `/metrics`
   * render): at 50,000 rigs the roll-up is 7-13 ms of work. Rigs that come, go or change while the
   * steps pause are summed as they are when their turn comes.
   */
  *siteSteps(): Generator<void, SiteView[], void> {
    const out = new Map<string, SiteView>();
    const site = (name: string): SiteView => {
      let v = out.get(name);
      if (!v) {
        v = {
          site: name,
          state: 'unknown',
          hashrateHs: 0,
          expectedHashrateHs: 0,
          powerW: 0,
          rigsByState: emptyByState(),
          hostsOnline: 0,
          hostsTotal: 0,
        };
        out.set(name, v);
      }
      return v;
    };
    for (const h of this.hosts.values()) {
      const v = site(h.site);
      v.hostsTotal++;
      if (h.online) v.hostsOnline++;
    }
    let i = 0;
    for (const r of this.rigs.values()) {
      if (i++ % ITEMS_PER_STEP === ITEMS_PER_STEP - 1) yield;
      const v = site(r.site);
      v.rigsByState[r.state]++;
      v.expectedHashrateHs += r.expectedHashrateHs;
      if (r.sample?.reachable) {
        v.hashrateHs += r.sample.hashrate_hs ?? 0;
        v.powerW += r.sample.power_w ?? 0;
      }
    }
    for (const v of out.values()) v.state = this.siteState(v.site, v);
    return [...out.values()].sort((a, b) => a.site.localeCompare(b.site));
  }

  /**
   * A site's state: set by the diagnosis when it has one; otherwise the most common non-ok rig state
   * when at least half the rigs share it, `degraded` when only some rigs are unwell.
   */
  readonly siteStates = new Map<string, FleetState>();

  setSiteState(site: string, state: FleetState): void {
    this.siteStates.set(site, state);
    const view = this.sites().find((s) => s.site === site);
    if (view) this.emit('change', { type: 'site', site: view });
  }

  private siteState(name: string, v: SiteView): FleetState {
    const set = this.siteStates.get(name);
    if (set) return set;
    let best: FleetState = 'ok';
    let bestCount = 0;
    for (const s of STATES) {
      if (s === 'ok') continue;
      if (v.rigsByState[s] > bestCount) {
        best = s;
        bestCount = v.rigsByState[s];
      }
    }
    const total = Object.values(v.rigsByState).reduce((a, b) => a + b, 0);
    if (total === 0) return 'unknown';
    if (bestCount === 0) return 'ok';
    return bestCount * 2 >= total ? best : 'degraded';
  }
}
