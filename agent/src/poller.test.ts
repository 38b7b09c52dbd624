import { validate } from '@hashwatch/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PollRoundOptions, pollRound } from './poller.js';
import { READERS, resetCgminerCache } from './readers/index.js';
import { createSimSite, type SimSite } from './sim/farm.js';
import type { RigReader } from './targets.js';

const base: PollRoundOptions = {
  concurrency: 25,
  rigTimeoutMs: 1500, // generous: a healthy loopback rig must never time out on a loaded CI machine
  probeTimeoutMs: 300,
  probeAttempts: 2,
  now: () => Date.now(),
};

function validReport(rigs: unknown[], probes: unknown[]): void {
  const r = validate(
    'report',
    { v: 1, boot_id: 'test-boot-1', seq: 0, ts: Date.now(), interval_ms: 10_000, rigs, probes },
    Date.now(),
  );
  if (!r.ok) throw new Error(r.error.message);
}

describe('pollRound over 200 simulated rigs', () => {
  let site: SimSite;
  beforeAll(async () => {
    resetCgminerCache();
    site = createSimSite({ rigs: 200, seed: 11, apiOf: (i) => (i % 20 === 19 ? 'axeos' : 'cgminer') });
    await site.start();
  });
  afterAll(() => site.stop());

  it('finishes with 10 % of rigs hung, within the concurrency bound', async () => {
    const hung = site.rigs.filter((_, i) => i % 10 === 3);
    expect(hung).toHaveLength(20);
    for (const r of hung) r.hang();
    try {
      const result = await pollRound(site.rigTargets(), site.probeTargets(), base);
      expect(result.rigs).toHaveLength(200);
      expect(result.rigs.map((s) => s.rig)).toEqual(site.rigs.map((r) => r.id));
      const timedOut = result.rigs.filter((s) => s.error?.kind === 'timeout').map((s) => s.rig);
      expect(timedOut.sort()).toEqual(hung.map((r) => r.id).sort());
      expect(result.rigs.filter((s) => s.reachable)).toHaveLength(180);
      expect(result.errors).toEqual({ poll_timeout: 20 });
      expect(result.probes.every((p) => p.ok)).toBe(true);
      validReport(result.rigs, result.probes);

      // Every worker holds a slot at most rigTimeoutMs (+ cutoff slack) per rig, so even if every
      // rig hung the round would take ceil(N / concurrency) slots; the probes run beside them.
      const worstCaseMs =
        Math.ceil(200 / base.concurrency) * (base.rigTimeoutMs + 50) + base.probeAttempts * base.probeTimeoutMs;
      expect(result.durationMs).toBeLessThan(worstCaseMs * 2);
      expect(result.durationMs).toBeGreaterThanOrEqual(base.rigTimeoutMs); // the hung rigs were waited for
    } finally {
      for (const r of hung) await r.heal();
    }
  });

  it('counts errors by kind: power cut, garbage, cut uplink', async () => {
    const [a, b] = site.rigs as [NonNullable<SimSite['rigs'][0]>, NonNullable<SimSite['rigs'][0]>];
    await a.powerCut();
    b.garbage();
    await site.uplink.cut();
    try {
      const result = await pollRound(site.rigTargets().slice(0, 10), site.probeTargets(), base);
      expect(result.errors.poll_refused).toBe(1);
      expect(result.errors.poll_invalid_reply).toBe(1);
      expect(result.errors.probe_timeout).toBe(4); // dns, 2× internet, pool; the gateway is on the LAN
      const probes = Object.fromEntries(result.probes.map((p) => [p.target, p.ok]));
      expect(probes).toEqual({ gateway: true, dns: false, 'internet-1': false, 'internet-2': false, pool: false });
      const healthy = result.rigs[2];
      expect(healthy?.pools?.[0]).toMatchObject({ status: 'dead', active: false });
      validReport(result.rigs, result.probes);
    } finally {
      await site.uplink.restore();
      await a.heal();
      await b.heal();
    }
  });
});

describe('pollRound guarantees', () => {
  it('cuts off a reader that ignores its deadline', async () => {
    const original = READERS.cgminer;
    const stuck: RigReader = { api: 'cgminer', poll: () => new Promise(() => {}) };
    READERS.cgminer = stuck;
    try {
      const targets = Array.from({ length: 4 }, (_, i) => ({
        id: `stuck-${i}`,
        api: 'cgminer' as const,
        host: '127.0.0.1',
        port: 9,
        model: 'x',
        nominal_hashrate_hs: 1e14,
      }));
      const result = await pollRound(targets, [], { ...base, concurrency: 2, rigTimeoutMs: 100 });
      expect(result.rigs.map((s) => s.error?.kind)).toEqual(['timeout', 'timeout', 'timeout', 'timeout']);
      expect(result.errors).toEqual({ poll_timeout: 4 });
      expect(result.durationMs).toBeLessThan(2 * (100 + 50) * 4);
    } finally {
      READERS.cgminer = original;
    }
  });

  it('an aborted round returns promptly with timeouts', async () => {
    const site = createSimSite({ rigs: 3, seed: 2 });
    await site.start();
    try {
      for (const r of site.rigs) r.hang();
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 50);
      const result = await pollRound(site.rigTargets(), [], { ...base, rigTimeoutMs: 5000, signal: controller.signal });
      expect(result.rigs.every((s) => s.error?.kind === 'timeout')).toBe(true);
      expect(result.durationMs).toBeLessThan(5000);
    } finally {
      await site.stop();
    }
  });

  it('an empty round is valid', async () => {
    const result = await pollRound([], [], base);
    expect(result).toMatchObject({ rigs: [], probes: [], errors: {} });
  });
});
