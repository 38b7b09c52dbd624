/** Hand-built inputs for the unit tests: one site, one host, rigs with known nominal figures. */
import type { Birth, ProbeResult, Report, RigSample } from '@hashwatch/protocol';

export const T0 = Date.UTC(2026, 0, 5);
export const I = 60_000;
export const NOMINAL = 100e12;

export function birth(rigs = 4, opts: { boot?: string; conn?: number; uptimeS?: number; nowMs?: number } = {}): Birth {
  return {
    v: 1,
    boot_id: opts.boot ?? 'boot-aaaaaaaa',
    conn: opts.conn ?? 1,
    ts: opts.nowMs ?? T0,
    agent_version: 'test',
    host: { hostname: 'h1', os: 'linux', arch: 'x64', uptime_s: opts.uptimeS ?? 86_400 },
    interval_ms: I,
    rigs: Array.from({ length: rigs }, (_, i) => ({
      id: `r${i + 1}`,
      model: 'S19',
      api: 'cgminer' as const,
      nominal_hashrate_hs: NOMINAL,
      nominal_power_w: 3000,
      feed: i % 2 === 0 ? 'feed-a' : 'feed-b',
      rack: i < rigs / 2 ? 'rack-1' : 'rack-2',
    })),
    probes: [],
  };
}

export function sample(rig: string, ts: number, over: Partial<RigSample> = {}): RigSample {
  return {
    rig,
    ts,
    reachable: true,
    hashrate_hs: NOMINAL,
    power_w: 3000,
    power_source: 'rig',
    temps: [{ sensor: 'chip', temp_c: 70 }],
    fans: [{ fan: 'f0', rpm: 5000 }],
    boards: [
      { board: '0', ok: true },
      { board: '1', ok: true },
      { board: '2', ok: true },
    ],
    pools: [{ url: 'stratum+tcp://p:3333', status: 'alive', active: true, last_share_ts: ts - 2000 }],
    uptime_s: 100_000,
    ...over,
  };
}

export type ProbeSet = { internet?: boolean; dns?: boolean; pool?: boolean; poolDnsError?: boolean; gateway?: boolean };

export function probes(ts: number, set: ProbeSet = {}): ProbeResult[] {
  const p = (target: string, role: ProbeResult['role'], ok: boolean, errorClass?: 'dns' | 'timeout'): ProbeResult =>
    ok
      ? { target, kind: 'tcp', role, ok: true, attempts: 3, loss_ratio: 0, latency_ms: 10, ts }
      : { target, kind: 'tcp', role, ok: false, attempts: 3, loss_ratio: 1, error_class: errorClass ?? 'timeout', ts };
  return [
    p('gw', 'gateway', set.gateway ?? true),
    p('dns', 'dns', set.dns ?? true),
    p('inet', 'internet', set.internet ?? true),
    p('pool', 'pool', set.pool ?? true, set.poolDnsError ? 'dns' : 'timeout'),
  ];
}

let seq = 0;
export function report(ts: number, rigs: RigSample[], set: ProbeSet = {}, historical = false): Report {
  return {
    v: 1,
    boot_id: 'boot-aaaaaaaa',
    seq: seq++,
    ts,
    interval_ms: I,
    ...(historical ? { historical: true } : {}),
    rigs,
    probes: probes(ts, set),
  };
}

/** All rigs healthy at slot k, with per-rig overrides. */
export function round(
  k: number,
  n = 4,
  over: Record<string, Partial<RigSample>> = {},
  set: ProbeSet = {},
  historical = false,
) {
  const ts = T0 + k * I;
  return report(
    ts,
    Array.from({ length: n }, (_, i) => sample(`r${i + 1}`, ts, over[`r${i + 1}`] ?? {})),
    set,
    historical,
  );
}
