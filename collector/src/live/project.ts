/**
 * Pure projections from the FleetView's records to the live-view frames: slim, JSON-safe, with
 * the figures the page shows precomputed (max temperature, boards ok/total, pool connected, uplink
 * per role, deficit by cause). No I/O and no clock: callers pass `nowMs`.
 */
import type { ProbeResult } from '@hashwatch/protocol';
import type { Cause, FleetView, HostView, IncidentView, RigView, SiteView } from '../fleet/view.js';
import type {
  LiveFilter,
  LiveHost,
  LiveIncident,
  LiveProbe,
  LiveRig,
  LiveSite,
  LiveSummaryPoint,
  LiveSummarySite,
  LiveUplinkRole,
} from './protocol.js';

export function projectRig(r: RigView): LiveRig {
  const s = r.sample;
  let maxTempC: number | null = null;
  for (const t of s?.temps ?? []) if (maxTempC === null || t.temp_c > maxTempC) maxTempC = t.temp_c;
  for (const b of s?.boards ?? [])
    if (b.temp_c !== undefined && (maxTempC === null || b.temp_c > maxTempC)) maxTempC = b.temp_c;
  const boards = s?.boards;
  const pools = s?.pools;
  const active = pools?.find((p) => p.active) ?? pools?.[0];
  return {
    site: r.site,
    host: r.host,
    rig: r.rig,
    model: r.model,
    state: r.state,
    stateSinceMs: r.stateSinceMs,
    evidence: r.evidence,
    reachable: s ? s.reachable : null,
    pollError: s?.error ? `${s.error.kind}: ${s.error.message}` : null,
    hashrateHs: s?.reachable ? (s.hashrate_hs ?? null) : s ? 0 : null,
    expectedHashrateHs: r.expectedHashrateHs,
    powerW: s?.power_w ?? null,
    maxTempC,
    boardsOk: boards ? boards.filter((b) => b.ok).length : null,
    boardsTotal: boards ? boards.length : null,
    poolConnected: active ? active.status === 'alive' : null,
    sampleTs: s?.ts ?? null,
  };
}

function projectProbe(p: ProbeResult): LiveProbe {
  return {
    target: p.target,
    kind: p.kind,
    role: p.role,
    ok: p.ok,
    lossRatio: p.loss_ratio,
    latencyMs: p.latency_ms ?? null,
    errorClass: p.error_class ?? null,
    ts: p.ts,
  };
}

export function projectHost(h: HostView): LiveHost {
  return {
    site: h.site,
    host: h.host,
    online: h.online,
    offlineReason: h.offlineReason ?? null,
    presenceSinceMs: h.presenceSinceMs,
    state: h.state,
    agentVersion: h.agentVersion ?? null,
    lastReportTs: h.lastReportTs ?? null,
    lastReceivedMs: h.lastReceivedMs ?? null,
    clockSkewMs: h.clockSkewMs ?? null,
    spoolDepth: h.agent?.spool_depth ?? null,
    probes: h.probes.map(projectProbe),
  };
}

export function projectIncident(i: IncidentView): LiveIncident {
  return {
    id: i.id,
    scope: i.scope,
    scopeId: i.scopeId,
    site: i.site,
    cause: i.cause,
    startMs: i.startMs,
    endMs: i.endMs ?? null,
    rigsAffected: i.rigsAffected,
    deficitHashes: i.deficitHashes,
    energyJ: i.energyJ,
    evidence: i.evidence,
  };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Uplink per probe role over the site's online hosts (an offline host's probes are stale). */
export function uplinkByRole(hosts: Iterable<HostView>): LiveUplinkRole[] {
  const byRole = new Map<string, ProbeResult[]>();
  for (const h of hosts) {
    if (!h.online) continue;
    for (const p of h.probes) {
      const list = byRole.get(p.role) ?? [];
      if (list.length === 0) byRole.set(p.role, list);
      list.push(p);
    }
  }
  const order = ['gateway', 'dns', 'internet', 'pool'];
  return [...byRole.entries()]
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([role, probes]) => ({
      role,
      targetsOk: probes.filter((p) => p.ok).length,
      targetsTotal: probes.length,
      lossRatio: probes.reduce((sum, p) => sum + p.loss_ratio, 0) / probes.length,
      latencyMs: median(probes.filter((p) => p.ok && p.latency_ms !== undefined).map((p) => p.latency_ms!)),
    }));
}

/** Site roll-ups with uplink, keyed by site name. One pass over hosts plus `view.sites()`. */
export function projectSites(view: FleetView): Map<string, LiveSite> {
  const hostsBySite = new Map<string, HostView[]>();
  for (const h of view.hosts.values()) {
    const list = hostsBySite.get(h.site) ?? [];
    if (list.length === 0) hostsBySite.set(h.site, list);
    list.push(h);
  }
  const out = new Map<string, LiveSite>();
  for (const s of view.sites()) out.set(s.site, projectSite(s, hostsBySite.get(s.site) ?? []));
  return out;
}

function projectSite(s: SiteView, hosts: HostView[]): LiveSite {
  return {
    site: s.site,
    state: s.state,
    hashrateHs: s.hashrateHs,
    expectedHashrateHs: s.expectedHashrateHs,
    powerW: s.powerW,
    rigsByState: s.rigsByState,
    hostsOnline: s.hostsOnline,
    hostsTotal: s.hostsTotal,
    uplink: uplinkByRole(hosts),
  };
}

/** A summary point: site figures plus the live deficit of unwell rigs, split by their state. */
export function summarize(view: FleetView, nowMs: number): LiveSummaryPoint {
  const deficits = new Map<string, Partial<Record<Cause, number>>>();
  for (const r of view.rigs.values()) {
    if (r.state === 'ok') continue;
    const actual = r.sample?.reachable ? (r.sample.hashrate_hs ?? 0) : 0;
    const missing = r.expectedHashrateHs - actual;
    if (missing <= 0) continue;
    const d = deficits.get(r.site) ?? {};
    deficits.set(r.site, d);
    d[r.state] = (d[r.state] ?? 0) + missing;
  }
  const sites: LiveSummarySite[] = view.sites().map((s) => ({
    site: s.site,
    hashrateHs: s.hashrateHs,
    expectedHashrateHs: s.expectedHashrateHs,
    powerW: s.powerW,
    rigsByState: s.rigsByState,
    deficitHsByCause: deficits.get(s.site) ?? {},
  }));
  return { ts: nowMs, sites };
}

/** Whether an entity of `site` (and `host`, when it has one) passes a client's filter. */
export function matches(filter: LiveFilter, site: string, host?: string): boolean {
  if (filter.site !== undefined && filter.site !== site) return false;
  if (filter.host !== undefined && host !== undefined && filter.host !== host) return false;
  return true;
}

/** An incident's host, when its scope is a host or a rig (`site/host[/rig]`). */
export function incidentHost(i: { scope: string; scopeId: string }): string | undefined {
  return i.scope === 'site' ? undefined : i.scopeId.split('/')[1];
}

/** A summary point narrowed to the client's site (a host filter still sees its site's chart). */
export function filterPoint(point: LiveSummaryPoint, filter: LiveFilter): LiveSummaryPoint {
  if (filter.site === undefined) return point;
  return { ts: point.ts, sites: point.sites.filter((s) => s.site === filter.site) };
}
