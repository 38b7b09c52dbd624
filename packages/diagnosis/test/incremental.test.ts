/**
 * The Diagnoser keeps what a report needs of its site (feed, rack and pool counts, per-host state
 * counts) up to date as rigs change instead of recounting the site on every report. These tests
 * hold it to the plain definitions, recounted from the exported state, on a randomized fleet.
 */
import type { RigSample } from '@hashwatch/protocol';
import { describe, expect, it, vi } from 'vitest';
import type { Neighbourhood } from '../src/classify.js';
import { poolTrouble } from '../src/classify.js';
import type { DiagnosisConfig } from '../src/config.js';
import { Diagnoser, type DiagnoserState } from '../src/diagnoser.js';
import type { Evidence, Outcome, State } from '../src/types.js';
import { type FleetEvent, randomFleet } from './random-fleet.js';

const seen = vi.hoisted(() => ({ calls: [] as { rig: string; near: Neighbourhood }[] }));

vi.mock('../src/classify.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/classify.js')>();
  return {
    ...real,
    classifySample: (...args: Parameters<typeof real.classifySample>) => {
      seen.calls.push({ rig: args[0].rig, near: structuredClone(args[4]) });
      return real.classifySample(...args);
    },
  };
});

type RigView = Pick<DiagnoserState['rigs'][number], 'feed' | 'rack' | 'reachable' | 'poolTrouble'>;
const NEW_RIG: RigView = { feed: null, rack: null, reachable: true, poolTrouble: false };

/** The neighbourhood by its definition: one walk over every rig of the site. */
function walkedNeighbourhood(
  state: DiagnoserState,
  e: Extract<FleetEvent, { kind: 'report' }>,
  config: DiagnosisConfig,
): Map<string, Neighbourhood> {
  const rigs = new Map(state.rigs.map((r) => [`${r.site}/${r.host}/${r.rig}`, r as RigView]));
  const hostRigs = (host: string) => state.hosts.find((h) => h.site === e.site && h.host === host)?.rigs ?? [];
  const hosts = state.sites.find((s) => s.site === e.site)?.hosts ?? [];
  const siteHosts = hosts.includes(e.host) ? hosts : [...hosts, e.host];
  const samples = new Map<string, RigSample>(e.report.rigs.map((s) => [s.rig, s]));
  const own = [...hostRigs(e.host)];
  // A live report registers the rigs it brings before it looks at the site; a spooled one does not.
  if (!e.report.historical)
    for (const s of e.report.rigs)
      if (!own.includes(s.rig)) {
        own.push(s.rig);
        rigs.set(`${e.site}/${e.host}/${s.rig}`, NEW_RIG);
      }
  const feeds = new Map<string, { down: number; size: number }>();
  const racks = new Map<string, { down: number; size: number }>();
  let reachable = 0;
  let trouble = 0;
  for (const host of siteHosts) {
    for (const rid of host === e.host ? own : hostRigs(host)) {
      const o = rigs.get(`${e.site}/${host}/${rid}`);
      if (!o) continue;
      const sample = host === e.host ? samples.get(rid) : undefined;
      const reach = sample ? sample.reachable : o.reachable;
      for (const [id, map] of [
        [o.feed, feeds],
        [o.rack, racks],
      ] as const) {
        if (id === null) continue;
        const g = map.get(id) ?? { down: 0, size: 0 };
        g.size += 1;
        if (!reach) g.down += 1;
        map.set(id, g);
      }
      if (!reach) continue;
      reachable += 1;
      if (sample ? poolTrouble(sample, e.report.ts, config) !== undefined : o.poolTrouble) trouble += 1;
    }
  }
  const out = new Map<string, Neighbourhood>();
  for (const rid of samples.keys()) {
    const o = rigs.get(`${e.site}/${e.host}/${rid}`);
    if (!o) continue;
    const feed = o.feed === null ? undefined : feeds.get(o.feed);
    const rack = o.rack === null ? undefined : racks.get(o.rack);
    out.set(rid, {
      ...(feed && o.feed !== null ? { feed: { id: o.feed, ...feed } } : {}),
      ...(rack && o.rack !== null ? { rack: { id: o.rack, ...rack } } : {}),
      sitePoolTroubleFraction: reachable > 0 ? trouble / reachable : 0,
    });
  }
  return out;
}

/** The Diagnoser's tie-break: the most specific explanation first. */
const SEVERITY: State[] = [
  'power_loss',
  'connectivity_loss',
  'pool_outage',
  'unreachable',
  'hardware_fault',
  'degraded',
  'unknown',
];

/** A roll-up by its definition, from the list of its rigs' states in inventory order. */
function rolledUp(states: State[], config: DiagnosisConfig): { state: State; evidence: Evidence[] } {
  if (states.length === 0) return { state: 'unknown', evidence: [] };
  const counts = new Map<State, number>();
  for (const s of states) counts.set(s, (counts.get(s) ?? 0) + 1);
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
  const evidence = [{ signal: 'rigs', detail: `${detail} of ${states.length} rigs` }];
  if (best !== undefined && bestN / states.length >= config.rollup_fraction) return { state: best, evidence };
  return { state: best === undefined ? 'ok' : 'degraded', evidence };
}

function step(d: Diagnoser, e: Exclude<FleetEvent, { kind: 'restart' }>): Outcome {
  switch (e.kind) {
    case 'birth':
      return d.observeBirth(e.site, e.host, e.birth, e.nowMs);
    case 'report':
      return d.observeReport(e.site, e.host, e.report, e.nowMs);
    case 'presence':
      return d.observePresence(e.site, e.host, e.presence, e.nowMs);
    case 'tick':
      return d.tick(e.nowMs);
  }
}

describe('Diagnoser site context and roll-ups, kept incrementally', () => {
  it('equal their definitions recounted from the whole site, on a randomized fleet', () => {
    const shape = { sites: 2, hostsPerSite: [2, 4] as [number, number], rigsPerHost: [3, 12] as [number, number] };
    let checkedNear = 0;
    let checkedRollups = 0;
    let replacedGuesses = 0;
    for (const seed of [7]) {
      let d = new Diagnoser();
      for (const e of randomFleet(seed, { ...shape, rounds: 120, restartEvery: 41 })) {
        if (e.kind === 'restart') {
          const next = new Diagnoser();
          next.importState(d.exportState());
          d = next;
          continue;
        }
        const before = d.exportState();
        // Rebuilt from the state before every event: its derived counts are recounted from scratch.
        const rebuilt = new Diagnoser();
        rebuilt.importState(before);
        seen.calls = [];
        const out = step(d, e);
        const calls = seen.calls;
        expect(step(rebuilt, e)).toEqual(out);

        if (e.kind !== 'report') continue;
        if (e.report.historical) {
          // An old boot's spooled report taking a slot guessed from uptime across the new boot.
          const guessed = (state: DiagnoserState) =>
            state.rigs
              .filter((r) => r.site === e.site && r.host === e.host)
              .reduce((n, r) => n + r.guessedSlots.length, 0);
          if (guessed(d.exportState()) < guessed(before)) replacedGuesses += 1;
        }
        const want = walkedNeighbourhood(before, e, d.config);
        for (const c of calls) {
          expect(c.near, `${e.site}/${e.host}/${c.rig} at ${e.report.ts}`).toEqual(want.get(c.rig));
          checkedNear += 1;
        }
        if (e.report.historical) continue;
        // A live report ends with its site's roll-up: every host and the site match a recount.
        const after = d.exportState();
        const stateOf = new Map(after.rigs.map((r) => [`${r.site}/${r.host}/${r.rig}`, r.state]));
        const all: State[] = [];
        const last = new Map(out.changes.map((c) => [c.id, c]));
        for (const host of after.sites.find((s) => s.site === e.site)?.hosts ?? []) {
          const h = after.hosts.find((x) => x.site === e.site && x.host === host);
          const states = (h?.rigs ?? []).flatMap((id) => stateOf.get(`${e.site}/${host}/${id}`) ?? []);
          all.push(...states);
          const r = h?.silent ? { state: 'unknown' as State, evidence: [] } : rolledUp(states, d.config);
          expect(d.stateOf('host', `${e.site}/${host}`)?.state).toBe(r.state);
          const change = last.get(`${e.site}/${host}`);
          if (change) expect(change.evidence).toEqual(r.evidence);
          checkedRollups += 1;
        }
        const r = rolledUp(all, d.config);
        expect(d.stateOf('site', e.site)?.state).toBe(r.state);
        const change = last.get(e.site);
        if (change) expect(change.evidence).toEqual(r.evidence);
      }
    }
    // The stream must have exercised both, or the test proves nothing.
    expect(checkedNear).toBeGreaterThan(3000);
    expect(checkedRollups).toBeGreaterThan(700);
    expect(replacedGuesses).toBeGreaterThan(0);
  });
});
