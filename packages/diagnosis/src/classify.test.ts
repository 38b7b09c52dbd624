import { describe, expect, it } from 'vitest';
import { I, NOMINAL, probes, sample, T0 } from '../test/helpers.js';
import { classifySample, type Neighbourhood, type RigExpectation, uplinkFromProbes } from './classify.js';
import { DEFAULT_CONFIG } from './config.js';

const cfg = DEFAULT_CONFIG;
const rig: RigExpectation = { nominalHs: NOMINAL, nominalPowerW: 3000, expectedHs: NOMINAL, current: 'ok' };
const near: Neighbourhood = { sitePoolTroubleFraction: 0 };
const dead = [{ url: 'stratum+tcp://p:3333', status: 'dead' as const, active: true, last_share_ts: T0 - 600_000 }];

function classify(over: Parameters<typeof sample>[2] = {}, set: Parameters<typeof probes>[1] = {}, n = near, r = rig) {
  return classifySample(sample('r1', T0, over), T0, uplinkFromProbes(probes(T0, set), cfg), r, n, cfg);
}

describe('uplinkFromProbes', () => {
  it('marks a role down when all its probes fail, up when one succeeds, undefined when absent', () => {
    const u = uplinkFromProbes(probes(T0, { internet: false }), cfg);
    expect(u.internetDown).toBe(true);
    expect(u.dnsDown).toBe(false);
    expect(u.evidence.map((e) => e.signal)).toEqual(['probe.internet']);
    expect(uplinkFromProbes([], cfg).internetDown).toBeUndefined();
  });
});

describe('classifySample', () => {
  it('is ok at 95 % of expected and degraded at 70 %', () => {
    expect(classify({ hashrate_hs: 0.95 * NOMINAL }).state).toBe('ok');
    expect(classify({ hashrate_hs: 0.7 * NOMINAL }).state).toBe('degraded');
  });

  it('calls a powered, reachable rig far below expected with pool and uplink fine a hardware fault', () => {
    const v = classify({ hashrate_hs: 0.2 * NOMINAL });
    expect(v.state).toBe('hardware_fault');
    expect(v.evidence.map((e) => e.signal)).toContain('rig.context');
  });

  it('calls failing internet probes a connectivity loss even for a rig that still shows hashrate', () => {
    const v = classify({ pools: dead, hashrate_hs: 0 }, { internet: false, pool: false, dns: false });
    expect(v.state).toBe('connectivity_loss');
    expect(v.evidence.map((e) => e.signal)).toEqual(expect.arrayContaining(['probe.internet', 'rig.pool']));
  });

  it('reads an idle draw without work as the pool path failing, not power loss', () => {
    // An ASIC with no jobs idles at a few percent of nameplate while its API still answers.
    const idle = { pools: dead, hashrate_hs: 0, power_w: 120, power_source: 'meter' as const };
    expect(classify(idle, { internet: false, pool: false, dns: false }).state).toBe('connectivity_loss');
    // So is an idle draw while the pool is down and the internet fine: a pool outage.
    expect(classify(idle, { pool: false }).state).toBe('pool_outage');
    // The same reading with the uplink and pool fine is a power loss of the hashboards.
    expect(classify({ hashrate_hs: 0, power_w: 10, power_source: 'meter' as const }).state).toBe('power_loss');
  });

  it('does not read an active pool of unknown status (AxeOS) as a lost pool', () => {
    const pools = [{ url: 'stratum+tcp://p:3333', status: 'unknown' as const, active: true }];
    expect(classify({ pools, hashrate_hs: 0.98 * NOMINAL }).state).toBe('ok');
    // ...but its hashrate gone while the pool probes fail is the pool, not the rig.
    expect(classify({ pools, hashrate_hs: 0 }, { pool: false }).state).toBe('pool_outage');
    expect(classify({ pools, hashrate_hs: 0 }).state).toBe('hardware_fault');
  });

  it('names DNS when only DNS fails and the rig lost its pool', () => {
    const v = classify({ pools: dead, hashrate_hs: 0 }, { dns: false, pool: false, poolDnsError: true });
    expect(v.state).toBe('connectivity_loss');
    expect(v.evidence.map((e) => e.signal)).toEqual(expect.arrayContaining(['probe.dns', 'dns']));
  });

  it('keeps a rig ok through a DNS failure while its stratum connection holds', () => {
    expect(classify({}, { dns: false }).state).toBe('ok');
  });

  it('calls pool probes failing with the internet fine a pool outage', () => {
    expect(classify({ pools: dead, hashrate_hs: 0 }, { pool: false }).state).toBe('pool_outage');
  });

  it('keeps a rig that failed over to its second pool ok', () => {
    const pools = [
      { url: 'a', status: 'dead' as const, active: false },
      { url: 'b', status: 'alive' as const, active: true, last_share_ts: T0 - 1000 },
    ];
    expect(classify({ pools }, { pool: false }).state).toBe('ok');
  });

  it('calls a rig whose pool died alone (neighbours fine) rig-local, not an outage', () => {
    expect(classify({ pools: dead, hashrate_hs: 0 }).state).toBe('hardware_fault');
    expect(classify({ pools: dead, hashrate_hs: 0 }, {}, { sitePoolTroubleFraction: 0.8 }).state).toBe('pool_outage');
  });

  it('counts a rig-local pool loss as all lost, however fast the rig hashes locally', () => {
    const v = classify({ pools: dead, hashrate_hs: 110e12 });
    expect(v.state).toBe('hardware_fault');
    expect(v.hashrateHs).toBe(0);
  });

  it('reads metered 0 W on an unreachable rig as power loss', () => {
    const v = classify({ reachable: false, power_w: 0, power_source: 'meter', hashrate_hs: undefined });
    expect(v.state).toBe('power_loss');
  });

  it('tells a feed vanishing together (power) from a rack vanishing together (LAN)', () => {
    const gone = { reachable: false, error: { kind: 'timeout' as const, message: 'x' }, power_w: undefined };
    const feed = classify(
      gone,
      {},
      { ...near, feed: { id: 'a', down: 4, size: 4 }, rack: { id: 'r', down: 2, size: 4 } },
    );
    expect(feed.state).toBe('power_loss');
    const rack = classify(
      gone,
      {},
      { ...near, feed: { id: 'a', down: 2, size: 4 }, rack: { id: 'r', down: 4, size: 4 } },
    );
    expect(rack.state).toBe('unreachable');
    expect(rack.evidence.map((e) => e.signal)).toEqual(expect.arrayContaining(['rack', 'lan']));
    expect(classify(gone).state).toBe('unreachable');
  });

  it('calls a stopped fan or overheating with the hashrate gone a hardware fault, even with the uplink down', () => {
    expect(classify({ fans: [{ fan: 'f0', rpm: 0 }], hashrate_hs: 0 }, { internet: false }).state).toBe(
      'hardware_fault',
    );
    expect(classify({ temps: [{ sensor: 'c', temp_c: 99 }], hashrate_hs: 0.1 * NOMINAL }).state).toBe('hardware_fault');
  });

  it('calls one dead board of three (two thirds left) degraded, two dead a hardware fault', () => {
    const one = [
      { board: '0', ok: false },
      { board: '1', ok: true },
      { board: '2', ok: true },
    ];
    expect(classify({ boards: one, hashrate_hs: 0.66 * NOMINAL }).state).toBe('degraded');
    const two = one.map((b, i) => ({ ...b, ok: i === 2 }));
    expect(classify({ boards: two, hashrate_hs: 0.33 * NOMINAL }).state).toBe('hardware_fault');
  });

  it('calls a hot but fully hashing rig degraded (a warning), and a throttled one degraded', () => {
    expect(classify({ temps: [{ sensor: 'c', temp_c: 92 }] }).state).toBe('degraded');
    expect(classify({ temps: [{ sensor: 'c', temp_c: 92 }], hashrate_hs: 0.7 * NOMINAL }).state).toBe('degraded');
  });

  it('catches a rig below 80 % of nominal even when its learned baseline is lower', () => {
    const low = { ...rig, expectedHs: 0.85 * NOMINAL };
    expect(classify({ hashrate_hs: 0.78 * NOMINAL }, {}, near, low).state).toBe('degraded');
  });

  it('needs ok_ratio + margin to return from degraded to ok', () => {
    const degraded = { ...rig, current: 'degraded' as const };
    expect(classify({ hashrate_hs: 0.905 * NOMINAL }, {}, near, degraded).state).toBe('degraded');
    expect(classify({ hashrate_hs: 0.905 * NOMINAL }).state).toBe('ok');
  });

  it('reads stalled shares on an alive pool as pool trouble', () => {
    const stale = [{ url: 'p', status: 'alive' as const, active: true, last_share_ts: T0 - 20 * I }];
    expect(classify({ pools: stale, hashrate_hs: 0 }, { pool: false }).state).toBe('pool_outage');
  });
});
