/**
 * What the scenario generator makes rigs say when their pool path fails: they hash their queued
 * work, then idle with a small draw. Without the idle phase every scenario passed while the demo
 * read a drained uplink cut as power loss.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Report, RigSample } from '@hashwatch/protocol';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '../src/scenario/format.js';
import { generate } from '../src/scenario/generate.js';

const dir = fileURLToPath(new URL('../scenarios/', import.meta.url));
const load = (name: string) => parseScenario(readFileSync(`${dir}/${name}.yaml`, 'utf8'), `${name}.yaml`);

/** Every sample of one host (live or spooled), with seconds since an event's start. */
function samplesOf(name: string, host: string, eventIndex: number) {
  const spec = load(name);
  const gen = generate(spec);
  const ev = spec.events[eventIndex];
  if (!ev) throw new Error(`no event ${eventIndex}`);
  const startMs = gen.t0 + ev.at_min * 60_000;
  const endMs = startMs + (ev.for_min ?? 0) * 60_000;
  const out: { s: RigSample; sinceS: number; during: boolean; afterS: number }[] = [];
  for (const d of gen.deliveries) {
    if (d.kind !== 'report' || d.host !== host) continue;
    for (const s of (d.report as Report).rigs) {
      const during = s.ts >= startMs && s.ts < endMs;
      out.push({ s, sinceS: (s.ts - startMs) / 1000, during, afterS: (s.ts - endMs) / 1000 });
    }
  }
  return { spec, out };
}

describe('scenario generator: work drain and idle draw', () => {
  const cases = [
    ['drain-then-idle', 'uplink cut', 0],
    ['drain-then-idle', 'pool outage', 1],
    ['drain-then-idle-remote', 'uplink cut (spooled)', 0],
    ['drain-then-idle-remote', 'pool outage', 1],
  ] as const;
  for (const [name, what, index] of cases) {
    it(`${name}: rigs hash their queued work, then idle below the no-power line (${what})`, () => {
      const { spec, out } = samplesOf(name, 'host-1', index);
      const nominalW = 3250;
      const nominalHs = 110e12;
      // Rigs a feed cut took down in the meantime are unreachable, not idle.
      const draining = out.filter((x) => x.during && x.s.reachable && x.sinceS < spec.work_drain_s);
      const idle = out.filter((x) => x.during && x.s.reachable && x.sinceS >= spec.work_drain_s);
      expect(draining.length).toBeGreaterThan(0);
      expect(idle.length).toBeGreaterThan(100);
      // One-off glitches aside, a draining rig still hashes.
      const hashing = draining.filter(({ s }) => (s.hashrate_hs ?? 0) > 0.5 * nominalHs);
      expect(hashing.length).toBeGreaterThanOrEqual(0.9 * draining.length);
      for (const { s } of idle) {
        expect(s.hashrate_hs ?? 1).toBeLessThan(0.01 * nominalHs);
        expect(s.power_w ?? 0).toBeGreaterThan(0.5 * spec.idle_power_ratio * nominalW);
        expect(s.power_w ?? 1).toBeLessThan(0.05 * nominalW);
        expect(s.pools?.every((p) => p.status === 'dead')).toBe(true);
      }
      const after = out.filter((x) => x.afterS > 60 && x.afterS < 600);
      expect(after.length).toBeGreaterThan(0);
      expect(after.every(({ s }) => (s.power_w ?? 0) > 0.5 * nominalW)).toBe(true);
    });
  }

  it('keeps a rig that fails over to its backup pool hashing at full power', () => {
    const { out } = samplesOf('pool-failover', 'host-1', 0);
    const during = out.filter((x) => x.during && x.sinceS > 60);
    expect(during.length).toBeGreaterThan(0);
    expect(during.every(({ s }) => (s.power_w ?? 0) > 0.5 * 3250)).toBe(true);
  });
});

describe('scenario generator: an agent restart hidden in an uplink cut', () => {
  it('sends nothing during the cut, returns with the new boot, and replays this boot then the old one', () => {
    const spec = load('uplink-cut-agent-restart');
    const gen = generate(spec);
    const [cut, crash] = spec.events;
    if (!cut || !crash) throw new Error('two events expected');
    const cutStart = gen.t0 + cut.at_min * 60_000;
    const cutEnd = cutStart + (cut.for_min ?? 0) * 60_000;
    const host2 = gen.deliveries.filter((d) => d.kind !== 'tick' && d.host === 'host-2');
    // Only the cut's Will (old boot) gets out while the uplink is down.
    const during = host2.filter((d) => d.atMs >= cutStart && d.atMs < cutEnd);
    expect(during.map((d) => d.kind)).toEqual(['presence']);
    expect(during[0]?.kind === 'presence' && during[0].presence.boot_id).toBe('boot-host-2-0001');
    const births = host2.filter((d) => d.kind === 'birth' && d.atMs >= cutEnd);
    expect(births.map((d) => d.kind === 'birth' && d.birth.boot_id)).toEqual(['boot-host-2-0002']);
    // After the return: the first live report, then the spool, this boot's reports first.
    const reports = host2.flatMap((d) => (d.kind === 'report' && d.atMs >= cutEnd ? [d.report] : []));
    const firstLive = reports.findIndex((r) => !r.historical);
    expect(firstLive).toBe(0);
    const spooled = reports.filter((r) => r.historical);
    const boots = spooled.map((r) => r.boot_id);
    const newBoot = boots.filter((b) => b === 'boot-host-2-0002').length;
    expect(newBoot).toBeGreaterThan(0);
    expect(boots).toEqual([
      ...Array(newBoot).fill('boot-host-2-0002'),
      ...Array(boots.length - newBoot).fill('boot-host-2-0001'),
    ]);
    expect(boots.length - newBoot).toBeGreaterThan(0);
    // Between them, the two boots recorded every interval of the cut: the restart lost none.
    const slots = spooled.map((r) => Math.floor((r.ts - gen.t0) / gen.intervalMs)).sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: slots.length }, (_, i) => (slots[0] ?? 0) + i));
    expect(slots.length).toBe(cut.for_min);
    // The rigs ran through the restart: their uptime spans the cut.
    const live = reports[firstLive];
    expect(live?.rigs.every((s) => (s.uptime_s ?? 0) * 1000 > cutEnd - cutStart)).toBe(true);
  });
});
