/**
 * The per-sample rules: what one rig sample, its host's uplink probes and its neighbours say,
 * without memory. The Diagnoser adds memory (baseline, hysteresis, silence) around this.
 */
import type { ProbeResult, RigSample } from '@hashwatch/protocol';
import type { DiagnosisConfig } from './config.js';
import type { Evidence, State } from './types.js';

/** The host's uplink as its probes saw it in one report. `undefined` role = no probe of that role. */
export interface Uplink {
  gatewayDown: boolean | undefined;
  dnsDown: boolean | undefined;
  internetDown: boolean | undefined;
  poolDown: boolean | undefined;
  /** Pool probes failed with a DNS error class: the pool's name, not the pool, is the problem. */
  poolDnsErrors: boolean;
  evidence: Evidence[];
}

/** Reduces a report's probes to one verdict per role. */
export function uplinkFromProbes(probes: readonly ProbeResult[], config: DiagnosisConfig): Uplink {
  const byRole = new Map<string, ProbeResult[]>();
  for (const p of probes) {
    const list = byRole.get(p.role) ?? [];
    list.push(p);
    byRole.set(p.role, list);
  }
  const evidence: Evidence[] = [];
  const down = (role: string): boolean | undefined => {
    const list = byRole.get(role);
    if (!list || list.length === 0) return undefined;
    const failed = list.filter((p) => !p.ok).length;
    const meanLoss = list.reduce((s, p) => s + p.loss_ratio, 0) / list.length;
    const isDown = failed === list.length || meanLoss >= config.probe_loss_ratio;
    if (isDown) {
      evidence.push({
        signal: `probe.${role}`,
        detail: `${failed}/${list.length} ${role} probes failed (mean loss ${meanLoss.toFixed(2)} >= ${config.probe_loss_ratio})`,
      });
    }
    return isDown;
  };
  const uplink: Uplink = {
    gatewayDown: down('gateway'),
    dnsDown: down('dns'),
    internetDown: down('internet'),
    poolDown: down('pool'),
    poolDnsErrors: (byRole.get('pool') ?? []).some((p) => !p.ok && p.error_class === 'dns'),
    evidence,
  };
  return uplink;
}

/** What the rig's neighbours did at the same time (computed by the Diagnoser). */
export interface Neighbourhood {
  /** Unreachable share of the rig's feed and rack (including this rig), and their sizes. */
  feed?: { id: string; down: number; size: number };
  rack?: { id: string; down: number; size: number };
  /** Share of the site's reachable rigs whose pool is in trouble. */
  sitePoolTroubleFraction: number;
}

/** The rig's static facts and learned expectation. */
export interface RigExpectation {
  nominalHs: number;
  nominalPowerW: number | null;
  /** nominal × clamped baseline. */
  expectedHs: number;
  /** The rig's confirmed state: selects the threshold side of the ok/degraded hysteresis. */
  current: State;
}

export interface Verdict {
  state: State;
  evidence: Evidence[];
  /** Hashing, reachable and free of warnings: safe to learn the baseline from. */
  healthy: boolean;
  hashrateHs: number;
  powerW: number | null;
}

const pct = (x: number) => `${(x * 100).toFixed(0)} %`;

/** True when the sample's pools cannot carry work: no alive active pool, or shares stalled. */
export function poolTrouble(sample: RigSample, reportTs: number, config: DiagnosisConfig): Evidence | undefined {
  const pools = sample.pools;
  if (!pools || pools.length === 0) return undefined;
  // Some firmware (AxeOS) cannot tell whether its stratum connection is up: an active pool of
  // `unknown` status is no evidence either way, only a stalled last share is.
  const active = pools.find((p) => p.active && (p.status === 'alive' || p.status === 'unknown'));
  if (!active) {
    const states = pools.map((p) => `${p.status}${p.active ? '*' : ''}`).join(',');
    return { signal: 'rig.pool', detail: `no alive active pool (${states})` };
  }
  if (active.last_share_ts !== undefined && reportTs - active.last_share_ts > config.share_stall_ms) {
    return {
      signal: 'rig.pool.last_share',
      detail: `last share ${Math.round((reportTs - active.last_share_ts) / 1000)} s ago > ${config.share_stall_ms / 1000} s`,
    };
  }
  return undefined;
}

/** Hardware signals of one sample: severe ones explain a hashrate loss on their own. */
export function hardwareSignals(
  sample: RigSample,
  config: DiagnosisConfig,
): { severe: boolean; hot: boolean; evidence: Evidence[] } {
  const evidence: Evidence[] = [];
  let severe = false;
  let hot = false;
  const boards = sample.boards ?? [];
  const dead = boards.filter((b) => !b.ok);
  if (dead.length > 0) {
    evidence.push({
      signal: 'rig.boards',
      detail: `${dead.length}/${boards.length} hashboards missing or dead (${dead.map((b) => b.board).join(',')})`,
    });
    if (dead.length * 2 >= boards.length) severe = true;
  }
  const stopped = (sample.fans ?? []).filter((f) => f.rpm < config.min_fan_rpm);
  if (stopped.length > 0) {
    evidence.push({
      signal: 'rig.fans',
      detail: `fan ${stopped.map((f) => f.fan).join(',')} below ${config.min_fan_rpm} rpm`,
    });
    severe = true;
  }
  const temps = [...(sample.temps ?? []).map((t) => t.temp_c), ...boards.flatMap((b) => b.temp_c ?? [])];
  const hottest = temps.length > 0 ? Math.max(...temps) : undefined;
  if (hottest !== undefined && hottest >= config.hot_temp_c) {
    evidence.push({ signal: 'rig.temp', detail: `hottest sensor ${hottest} °C >= ${config.hot_temp_c} °C` });
    hot = true;
  }
  const fw = (sample.firmware_errors ?? []).filter((e) => e.kind !== 'network' && e.kind !== 'other');
  if (fw.length > 0) {
    evidence.push({ signal: 'rig.firmware_errors', detail: fw.map((e) => `${e.kind}:${e.code}`).join(', ') });
  }
  return { severe, hot, evidence };
}

/**
 * Classifies one rig sample. Order matters and is the contract: power, reachability (with feed and
 * rack correlation), the pool path (uplink, DNS, pool), then the hashrate against expectation with
 * hardware signals. A severe hardware signal outranks an uplink failure, because the rig would be
 * short even with the uplink up.
 */
export function classifySample(
  sample: RigSample,
  reportTs: number,
  uplink: Uplink,
  rig: RigExpectation,
  near: Neighbourhood,
  config: DiagnosisConfig,
): Verdict {
  const powerW = sample.power_w ?? null;
  const hashrateHs = sample.reachable ? (sample.hashrate_hs ?? sample.hashrate_avg_hs ?? 0) : 0;
  const powerOff =
    powerW !== null && (rig.nominalPowerW !== null ? powerW < config.power_off_ratio * rig.nominalPowerW : powerW < 1);
  const verdict = (state: State, evidence: Evidence[], healthy = false): Verdict => ({
    state,
    evidence,
    healthy,
    hashrateHs,
    powerW,
  });

  if (!sample.reachable) {
    const err: Evidence = {
      signal: 'rig.poll',
      detail: `poll failed: ${sample.error?.kind ?? 'unknown error'}${sample.error ? ` (${sample.error.message})` : ''}`,
    };
    if (powerOff) {
      return verdict('power_loss', [
        err,
        { signal: 'rig.power', detail: `${sample.power_source ?? 'reported'} power ${powerW} W ~ 0` },
      ]);
    }
    const share = (g?: { down: number; size: number }) => (g && g.size >= config.group_min_rigs ? g.down / g.size : 0);
    const feedShare = share(near.feed);
    const rackShare = share(near.rack);
    if (near.feed && feedShare >= config.group_fraction && feedShare > rackShare) {
      return verdict('power_loss', [
        err,
        {
          signal: 'feed',
          detail: `${near.feed.down}/${near.feed.size} rigs on feed ${near.feed.id} vanished together`,
        },
      ]);
    }
    if (near.rack && rackShare >= config.group_fraction) {
      const ev: Evidence[] = [
        err,
        {
          signal: 'rack',
          detail: `${near.rack.down}/${near.rack.size} rigs in rack ${near.rack.id} unreachable together`,
        },
      ];
      if (uplink.gatewayDown !== true) ev.push({ signal: 'lan', detail: "host uplink fine: the rack's LAN segment" });
      return verdict('unreachable', ev);
    }
    return verdict('unreachable', [err]);
  }

  // A rig whose API answers has its control board powered: a near-zero reading then means the
  // hashboards are idle or unpowered. Without work (uplink down, pool lost) idling is the likelier
  // story (an ASIC with no jobs drops to a few percent of nameplate), so the pool-path rules decide.
  const uplinkDown = uplink.internetDown === true || (uplink.gatewayDown === true && uplink.internetDown !== false);
  const trouble = poolTrouble(sample, reportTs, config);
  const noWork = uplinkDown || trouble !== undefined || uplink.poolDown === true;
  if (powerOff && hashrateHs <= 0.01 * rig.nominalHs && !noWork) {
    return verdict('power_loss', [{ signal: 'rig.power', detail: `power ${powerW} W ~ 0 and no hashrate` }]);
  }

  const ratio = rig.expectedHs > 0 ? hashrateHs / rig.expectedHs : 1;
  const nominalRatio = rig.nominalHs > 0 ? hashrateHs / rig.nominalHs : 1;
  const rateEv: Evidence = {
    signal: 'rig.hashrate',
    detail: `${pct(ratio)} of expected (${pct(nominalRatio)} of nominal)`,
  };
  const hw = hardwareSignals(sample, config);

  // Dead boards, a stopped fan, or overheating with the hashrate gone explain the loss on their own.
  if ((hw.severe || hw.hot) && ratio < config.degraded_ratio)
    return verdict('hardware_fault', [rateEv, ...hw.evidence]);

  // The pool path. An uplink that cannot reach the internet loses every share, whatever the rig shows.
  if (uplinkDown) {
    return verdict('connectivity_loss', [...uplink.evidence, ...(trouble ? [trouble] : []), rateEv, ...hw.evidence]);
  }
  if (trouble) {
    // A pool probe that timed out after resolving the name points at the pool, not at DNS.
    if (uplink.poolDnsErrors || (uplink.dnsDown === true && uplink.poolDown !== true)) {
      const ev = [...uplink.evidence, trouble, rateEv];
      if (uplink.poolDnsErrors)
        ev.push({ signal: 'probe.pool.dns', detail: 'pool probes fail to resolve the pool name' });
      if (uplink.internetDown === false)
        ev.push({ signal: 'dns', detail: 'internet reachable by IP: DNS-only failure' });
      return verdict('connectivity_loss', ev);
    }
    if (uplink.poolDown === true) return verdict('pool_outage', [...uplink.evidence, trouble, rateEv]);
    if (near.sitePoolTroubleFraction >= config.site_fraction) {
      return verdict('pool_outage', [
        trouble,
        { signal: 'site.pool', detail: `${pct(near.sitePoolTroubleFraction)} of the site's rigs lost their pool` },
      ]);
    }
    // Whatever the rig hashes locally, none of it reaches a pool: the deficit is all of it.
    return {
      ...verdict('hardware_fault', [
        trouble,
        rateEv,
        { signal: 'rig.local', detail: 'only this rig lost its pool while the uplink and neighbours are fine' },
      ]),
      hashrateHs: 0,
    };
  }

  // Firmware that cannot say whether its pool is up (AxeOS): hashrate gone while the pool probes
  // fail, or while most of the site lost its pool, is the pool and not this rig.
  if (
    ratio < config.degraded_ratio &&
    (uplink.poolDown === true || near.sitePoolTroubleFraction >= config.site_fraction)
  ) {
    const ev: Evidence[] = [...uplink.evidence, rateEv];
    if (uplink.poolDown !== true) {
      ev.push({
        signal: 'site.pool',
        detail: `${pct(near.sitePoolTroubleFraction)} of the site's rigs lost their pool`,
      });
    }
    return verdict('pool_outage', ev);
  }

  const okRatio = config.ok_ratio + (rig.current === 'degraded' ? config.ok_return_margin : 0);
  if (ratio >= okRatio && nominalRatio >= config.nominal_degraded_ratio) {
    if (hw.evidence.length > 0) return verdict('degraded', [rateEv, ...hw.evidence]);
    return verdict('ok', [rateEv], true);
  }
  if (ratio >= config.degraded_ratio) {
    const ev = [rateEv, ...hw.evidence];
    if (nominalRatio < config.nominal_degraded_ratio) {
      ev.push({ signal: 'rig.nominal', detail: `below ${pct(config.nominal_degraded_ratio)} of nominal` });
    }
    return verdict('degraded', ev);
  }
  return verdict('hardware_fault', [
    rateEv,
    ...hw.evidence,
    { signal: 'rig.context', detail: 'powered and reachable, pool alive, uplink fine' },
  ]);
}
