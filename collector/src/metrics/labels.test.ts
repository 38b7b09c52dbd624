import { describe, expect, it } from 'vitest';
import { FleetView } from '../fleet/view.js';
import { ExpositionWriter } from './exposition.js';
import { LabelCache } from './labels.js';
import { renderFleetMetrics, writeFleetMetrics } from './render.js';
import { buildSyntheticFleet, syntheticSources } from './synthetic-fleet.js';

const NOW_MS = Date.UTC(2026, 0, 15, 12);

describe('LabelCache', () => {
  it('keeps a page written with a kept cache identical to a fresh render while rigs change', () => {
    const fleet = buildSyntheticFleet({ nowMs: NOW_MS, sites: 2, hostsPerSite: 2, rigsPerHost: 6 });
    const sources = syntheticSources(fleet, NOW_MS);
    const options = { perRig: true, nowMs: NOW_MS };
    const labels = new LabelCache();
    const out = new ExpositionWriter(1);
    const scrape = () => {
      out.reset();
      writeFleetMetrics(out, sources, options, labels);
      expect(out.toString()).toBe(renderFleetMetrics(sources, options));
      return out.toString();
    };
    scrape();
    const r = fleet.getRig('alpha', 'host-1', 'rig-02')!;

    // Inventory labels change: the rig's info line follows at the next scrape.
    fleet.upsertRig('alpha', 'host-1', 'rig-02', { model: 'S21 "XP"', feed: 'pdu-9', rack: undefined }, NOW_MS);
    expect(scrape()).toContain(
      'hashwatch_rig_info{site="alpha",host="host-1",rig="rig-02",model="S21 \\"XP\\"",api="cgminer",feed="pdu-9"} 1',
    );
    // A rig comes (sorted into place, not appended) and another goes.
    fleet.upsertRig('alpha', 'host-1', 'rig-00', { model: 'new', api: 'luxos', expectedHashrateHs: 1 }, NOW_MS);
    fleet.rigs.delete('beta/host-2/rig-03');
    const page = scrape();
    expect(page.indexOf('rig="rig-00"')).toBeLessThan(page.indexOf('rig="rig-01"'));
    expect(page).not.toContain('site="beta",host="host-2",rig="rig-03"');
    // Same number of rigs but a different set (one replaced by another).
    fleet.rigs.delete('alpha/host-1/rig-00');
    fleet.upsertRig('gamma', 'host-1', 'rig-01', { model: 'late' }, NOW_MS);
    expect(scrape()).toContain('hashwatch_rig_info{site="gamma",host="host-1",rig="rig-01",model="late"');
    // New sensor and fan names, and sample values, show up.
    fleet.recordSample(
      'alpha',
      'host-1',
      {
        rig: 'rig-02',
        ts: NOW_MS,
        reachable: true,
        temps: [{ sensor: 'inlet\n"air"', temp_c: 21.5 }],
        fans: [{ fan: 'psu', rpm: 0 }],
      },
      NOW_MS,
    );
    expect(scrape()).toContain('sensor="inlet\\n\\"air\\""} 21.5');
    expect(r.model).toBe('S21 "XP"');
  });

  it('re-encodes nothing when nothing changed, and forgets rigs that are gone', () => {
    const fleet = new FleetView();
    for (const rig of ['b', 'a', 'c']) fleet.upsertRig('s', 'h', rig, { model: 'm' }, NOW_MS);
    const labels = new LabelCache();
    const first = labels.rigs(fleet.rigs);
    expect(first.map((r) => r.key)).toEqual(['s/h/a', 's/h/b', 's/h/c']);
    const bases = first.map((r) => r.base);
    const second = labels.rigs(fleet.rigs);
    expect(second.map((r) => r.base)).toEqual(bases);
    for (let i = 0; i < bases.length; i++) expect(second[i]?.base).toBe(bases[i]);
    fleet.rigs.delete('s/h/b');
    expect(labels.rigs(fleet.rigs).map((r) => r.key)).toEqual(['s/h/a', 's/h/c']);
  });

  it('walks a large fleet in steps, and a rig that goes during a pause keeps its last view', () => {
    const fleet = new FleetView();
    for (let i = 0; i < 5000; i++) fleet.upsertRig('s', 'h', `r${String(i).padStart(4, '0')}`, { model: 'm' }, NOW_MS);
    const labels = new LabelCache();
    const steps = labels.steps(fleet.rigs);
    // Paused while encoding: r0000.. are done, r4999 is not yet.
    expect(steps.next().done).toBe(false);
    const gone = fleet.rigs.get('s/h/r4999');
    fleet.rigs.delete('s/h/r4999');
    fleet.upsertRig('s', 'h', 'z-late', { model: 'm' }, NOW_MS);
    let pauses = 1;
    let step = steps.next();
    for (; !step.done; step = steps.next()) pauses++;
    // One pause per 1,024 rigs encoded, then per 1,024 checked.
    expect(pauses).toBe(8);
    const first = step.value;
    expect(first).toHaveLength(5000);
    expect(first.at(-1)?.key).toBe('s/h/r4999');
    expect(first.at(-1)?.view).toBe(gone);
    expect(first.some((r) => r.key === 's/h/z-late')).toBe(false);
    // The next call sees the set as it is now.
    const second = labels.rigs(fleet.rigs);
    expect(second).toHaveLength(5000);
    expect(second.at(-1)?.key).toBe('s/h/z-late');
    expect(second.some((r) => r.key === 's/h/r4999')).toBe(false);
  });

  it('bounds the sensor and fan names it keeps', () => {
    const labels = new LabelCache();
    const first = labels.pair('sensor', 'x"0');
    expect(Buffer.from(first).toString()).toBe(',sensor="x\\"0"');
    expect(labels.pair('sensor', 'x"0')).toBe(first);
    for (let i = 1; i <= 5000; i++) labels.pair('sensor', `s${i}`);
    // Evicted long ago, re-encoded to the same bytes.
    const again = labels.pair('sensor', 'x"0');
    expect(again).not.toBe(first);
    expect(Buffer.from(again).equals(Buffer.from(first))).toBe(true);
  });
});
