/**
 * A deterministic synthetic fleet in a FleetView: several sites and hosts, rigs in every state with
 * samples that look like what each state means, uplink probes, incidents, agent self-stats and
 * collector stats. Used by the metrics, golden-file and dashboard tests, and handy for demos.
 * Some inventory strings carry quotes, backslashes and newlines on purpose (escaping tests).
 */
import type { ProbeResult, RigSample } from '@hashwatch/protocol';
import { CAUSES, type Cause, type FleetState, FleetView, STATES } from '../fleet/view.js';
import { LatencyHistogram } from './histogram.js';
import type { MetricsSources } from './render.js';

export interface SyntheticFleetOptions {
  nowMs: number;
  sites: number;
  hostsPerSite: number;
  rigsPerHost: number;
}

const TH = 1e12;

function sampleFor(state: FleetState, rig: string, nowMs: number, i: number): RigSample | undefined {
  const nominal = 110 * TH;
  const base: RigSample = {
    rig,
    ts: nowMs - 5_000,
    reachable: true,
    hashrate_hs: nominal * (0.97 + (i % 3) * 0.01),
    power_w: 3250 + (i % 5) * 10,
    power_source: 'rig',
    temps: [
      { sensor: 'board0.chip', temp_c: 70 + (i % 4) },
      { sensor: 'board0.pcb', temp_c: 57 + (i % 3) },
    ],
    fans: [
      { fan: 'fan0', rpm: 5400 + i * 10 },
      { fan: 'fan1', rpm: 5460 + i * 10 },
    ],
    hw_errors: 10 + i,
    accepted: 15_000 + i * 100,
    rejected: 14 + i,
    stale: 2,
    pools: [{ url: 'stratum+tcp://pool.example.org:3333', status: 'alive', active: true, last_share_ts: nowMs - 3000 }],
    uptime_s: 86_400,
  };
  switch (state) {
    case 'ok':
      return base;
    case 'degraded':
      return { ...base, hashrate_hs: nominal * 0.7, temps: [{ sensor: 'board0.chip', temp_c: 88 }] };
    case 'hardware_fault':
      return {
        ...base,
        hashrate_hs: nominal * 0.3,
        hw_errors: 50_000 + i,
        fans: [
          { fan: 'fan0', rpm: 0 },
          { fan: 'fan1', rpm: 5460 },
        ],
      };
    case 'connectivity_loss':
      return {
        ...base,
        hashrate_hs: 0,
        pools: [{ url: 'stratum+tcp://pool.example.org:3333', status: 'dead', active: true }],
      };
    case 'pool_outage':
      return {
        ...base,
        hashrate_hs: 0,
        pools: [{ url: 'stratum+tcp://pool.example.org:3333', status: 'dead', active: true }],
      };
    case 'power_loss':
      return { rig, ts: nowMs - 5_000, reachable: false, power_w: 0, power_source: 'meter' };
    case 'unreachable':
      return { rig, ts: nowMs - 5_000, reachable: false, error: { kind: 'timeout', message: 'No reply in 5000 ms' } };
    case 'unknown':
      return undefined;
  }
}

function probes(site: number, nowMs: number, siteState: FleetState): ProbeResult[] {
  const uplinkDown = siteState === 'connectivity_loss';
  const poolDown = uplinkDown || siteState === 'pool_outage';
  return [
    {
      target: 'gw',
      kind: 'gateway',
      role: 'gateway',
      ok: true,
      attempts: 3,
      loss_ratio: 0,
      latency_ms: 0.4,
      ts: nowMs,
    },
    {
      target: 'dns-1',
      kind: 'dns',
      role: 'dns',
      ok: !uplinkDown,
      attempts: 3,
      loss_ratio: uplinkDown ? 1 : 0,
      ...(uplinkDown ? { error_class: 'timeout' as const } : { latency_ms: 12 + site }),
      ts: nowMs,
    },
    {
      target: 'internet-1',
      kind: 'tcp',
      role: 'internet',
      ok: !uplinkDown,
      attempts: 3,
      loss_ratio: uplinkDown ? 1 : site === 0 ? 1 / 3 : 0,
      ...(uplinkDown ? { error_class: 'timeout' as const } : { latency_ms: 25.5 }),
      ts: nowMs,
    },
    {
      target: 'pool-main',
      kind: 'stratum',
      role: 'pool',
      ok: !poolDown,
      attempts: 3,
      loss_ratio: poolDown ? 1 : 0,
      ...(poolDown ? { error_class: 'refused' as const } : { latency_ms: 80 }),
      ts: nowMs,
    },
  ];
}

/**
 * Rigs take the states in STATES order, round-robin over the whole fleet, so any fleet of 8 rigs
 * or more has every state. Site 0 is named `alpha`, then `beta`, `gamma`, … (`site-N` beyond).
 */
export function buildSyntheticFleet(options: SyntheticFleetOptions): FleetView {
  const { nowMs } = options;
  const names = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
  const fleet = new FleetView();
  let n = 0;
  for (let s = 0; s < options.sites; s++) {
    const site = names[s] ?? `site-${s}`;
    // The last site sits in an uplink outage, so its probes and site state tell that story.
    const siteState: FleetState = s === options.sites - 1 && options.sites > 1 ? 'connectivity_loss' : 'ok';
    for (let h = 0; h < options.hostsPerSite; h++) {
      const host = `host-${h + 1}`;
      const offline = s === 0 && h === options.hostsPerSite - 1 && options.hostsPerSite > 1;
      fleet.upsertHost(
        site,
        host,
        {
          online: !offline,
          ...(offline ? { offlineReason: 'lost' as const } : {}),
          bootId: `boot-${s}-${h}-0000`,
          agentVersion: h === 0 ? '0.1.0 "edge"\\build\n2' : '0.1.0',
          state: offline ? 'unknown' : siteState,
          lastReportTs: nowMs - 12_000,
          lastReceivedMs: nowMs - (offline ? 600_000 : 10_000),
          clockSkewMs: (h % 2 === 0 ? 1 : -1) * 250,
          agent: {
            spool_depth: offline ? 0 : h * 3,
            spool_bytes: offline ? 0 : h * 3 * 2048,
            ...(h > 0 && !offline ? { spool_oldest_ts: nowMs - 90_000 } : {}),
            spool_dropped_total: h,
            publish_latency_ms: 42 + h,
            poll_duration_ms: 850 + s * 10,
            errors: h === 0 ? {} : { poll_timeout: 3 + h, spool_disk_full: 0 },
          },
          probes: probes(s, nowMs, siteState),
        },
        nowMs - 3_600_000,
      );
      for (let r = 0; r < options.rigsPerHost; r++) {
        const rig = `rig-${String(r + 1).padStart(2, '0')}`;
        const state = STATES[n % STATES.length] ?? 'ok';
        const model =
          n % 4 === 0 ? 'Antminer "S19" \\ Pro\nrev2' : n % 4 === 1 ? 'Antminer S19j Pro' : 'Whatsminer M30S';
        const sample = sampleFor(state, rig, nowMs, n);
        fleet.upsertRig(
          site,
          host,
          rig,
          {
            model,
            api: 'cgminer',
            nominalHashrateHs: 110 * TH,
            nominalPowerW: 3250,
            ...(r % 2 === 0 ? { feed: `pdu-${h + 1}` } : {}),
            ...(r % 3 === 0 ? { rack: `rack-${s}${h}` } : {}),
            state,
            stateSinceMs: nowMs - 600_000,
            evidence: [`synthetic ${state}`],
            expectedHashrateHs: state === 'unknown' ? 0 : 110 * TH,
          },
          nowMs - 3_600_000,
        );
        if (sample) fleet.recordSample(site, host, sample, nowMs);
        n++;
      }
    }
    if (siteState !== 'ok') fleet.setSiteState(site, siteState);
  }
  const incidentCauses: Cause[] = ['hardware_fault', 'connectivity_loss', 'pool_outage', 'power_loss'];
  let id = 0;
  for (const [, rig] of fleet.rigs) {
    if (!incidentCauses.includes(rig.state as Cause)) continue;
    id++;
    fleet.upsertIncident({
      id: `inc-${id}`,
      scope: 'rig',
      scopeId: `${rig.site}/${rig.host}/${rig.rig}`,
      site: rig.site,
      cause: rig.state as Cause,
      startMs: nowMs - 600_000,
      ...(id % 3 === 0 ? { endMs: nowMs - 60_000 } : {}),
      rigsAffected: 1,
      deficitHashes: 110 * TH * 600,
      energyJ: 3250 * 600,
      evidence: [`synthetic ${rig.state}`],
    });
  }
  CAUSES.forEach((cause, i) => {
    fleet.addDeficit(cause, (i + 1) * 1e15);
  });
  return fleet;
}

/** Fleet plus fixed ingest, broker and store stats (no runtime registry: deterministic output). */
export function syntheticSources(fleet: FleetView, nowMs: number): MetricsSources {
  const commits = new LatencyHistogram();
  for (const s of [0.0008, 0.002, 0.004, 0.004, 0.009, 0.03, 0.2]) commits.observe(s);
  return {
    fleet,
    ingest: () => ({
      acceptedTotal: 12_345,
      rejectedTotalByReason: { HW_ERR_SCHEMA: 3, HW_ERR_TS_OUT_OF_RANGE: 1 },
      duplicatesTotal: 17,
      skewedTotal: 2,
      batchesTotal: 900,
      commitFailuresTotal: 0,
      commitLatency: commits.snapshot(),
    }),
    broker: () => ({
      up: true,
      mode: 'embedded',
      clients: 5,
      refusedTotalByReason: { bad_credentials: 2, rate_limited: 1 },
    }),
    store: () => ({ up: true, sizeBytes: 52_428_800, lastCommitMs: nowMs - 1_000 }),
    diagnosis: () => ({ behind: false }),
  };
}
