import { describe, expect, it } from 'vitest';
import { birth, I, NOMINAL, round, T0 } from '../test/helpers.js';
import { Diagnoser } from './diagnoser.js';
import { MemoryStore } from './scenario/score.js';
import type { Outcome } from './types.js';

const deadPool = [{ url: 'p', status: 'dead' as const, active: true, last_share_ts: T0 - 3_600_000 }];
const down = { internet: false, pool: false, dns: false };
const allDead = {
  r1: { pools: deadPool, hashrate_hs: 0 },
  r2: { pools: deadPool, hashrate_hs: 0 },
  r3: { pools: deadPool, hashrate_hs: 0 },
  r4: { pools: deadPool, hashrate_hs: 0 },
};

/** A diagnoser, a store with the collector's semantics, and everything it said. */
function harness() {
  const d = new Diagnoser();
  const store = new MemoryStore();
  const log: Outcome[] = [];
  const take = (o: Outcome) => {
    store.apply(o);
    log.push(o);
    return o;
  };
  take(d.observeBirth('s', 'h', birth(), T0 - 1000));
  return { d, store, log, take };
}

const rigState = (d: Diagnoser, rig: string) => d.stateOf('rig', `s/h/${rig}`)?.state;
const labels = (store: MemoryStore, rig: string) =>
  [...(store.rows.get(`s/h/${rig}`)?.values() ?? [])].sort((a, b) => a.ts - b.ts).map((r) => r.state);

describe('Diagnoser hysteresis', () => {
  it('does not flap on one noisy sample, and keeps its row ok', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
    const glitch = take(d.observeReport('s', 'h', round(5, 4, { r1: { hashrate_hs: 0.2 * NOMINAL } }), T0 + 5 * I));
    expect(glitch.changes).toEqual([]);
    for (let k = 6; k < 9; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
    expect(rigState(d, 'r1')).toBe('ok');
    expect(labels(store, 'r1').every((s) => s === 'ok')).toBe(true);
  });

  it('switches to connectivity loss on the second agreeing report, backdated with rewritten rows', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
    const first = take(d.observeReport('s', 'h', round(5, 4, allDead, down), T0 + 5 * I));
    expect(first.changes.filter((c) => c.scope === 'rig')).toEqual([]);
    const second = take(d.observeReport('s', 'h', round(6, 4, allDead, down), T0 + 6 * I));
    const change = second.changes.find((c) => c.id === 's/h/r1');
    expect(change).toMatchObject({ from: 'ok', to: 'connectivity_loss', sinceMs: T0 + 5 * I, atMs: T0 + 6 * I });
    expect(second.changes.find((c) => c.scope === 'site')?.to).toBe('connectivity_loss');
    expect(labels(store, 'r1').slice(-2)).toEqual(['connectivity_loss', 'connectivity_loss']);
    const opened = second.incidents.find((u) => u.action === 'open' && u.incident.scope === 'site');
    expect(opened?.incident.cause).toBe('connectivity_loss');
  });

  it('waits for a third report before calling a hardware fault', () => {
    const { d, take } = harness();
    for (let k = 0; k < 3; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
    const bad = { r2: { hashrate_hs: 0.1 * NOMINAL } };
    take(d.observeReport('s', 'h', round(3, 4, bad), T0 + 3 * I));
    take(d.observeReport('s', 'h', round(4, 4, bad), T0 + 4 * I));
    expect(rigState(d, 'r2')).toBe('ok');
    const o = take(d.observeReport('s', 'h', round(5, 4, bad), T0 + 5 * I));
    expect(o.changes.find((c) => c.id === 's/h/r2')).toMatchObject({ to: 'hardware_fault', sinceMs: T0 + 3 * I });
  });
});

describe('Diagnoser baseline', () => {
  it('learns a rig that always did 95 % as ok, and does not learn a fault into it', () => {
    const { d, take } = harness();
    for (let k = 0; k < 100; k++)
      take(d.observeReport('s', 'h', round(k, 4, { r1: { hashrate_hs: 0.95 * NOMINAL } }), T0 + k * I));
    expect(rigState(d, 'r1')).toBe('ok');
    const before = d.exportState().rigs.find((r) => r.rig === 'r1')?.baseline ?? 0;
    expect(before).toBeCloseTo(0.95, 2);
    for (let k = 100; k < 200; k++)
      take(d.observeReport('s', 'h', round(k, 4, { r1: { hashrate_hs: 0.6 * NOMINAL } }), T0 + k * I));
    expect(rigState(d, 'r1')).toBe('degraded');
    expect(d.exportState().rigs.find((r) => r.rig === 'r1')?.baseline).toBe(before);
  });

  it('holds an overclocked rig to its own higher baseline', () => {
    const { d, take } = harness();
    for (let k = 0; k < 80; k++)
      take(d.observeReport('s', 'h', round(k, 4, { r1: { hashrate_hs: 1.12 * NOMINAL } }), T0 + k * I));
    for (let k = 80; k < 85; k++)
      take(d.observeReport('s', 'h', round(k, 4, { r1: { hashrate_hs: 0.92 * NOMINAL } }), T0 + k * I));
    expect(rigState(d, 'r1')).toBe('degraded');
  });
});

describe('Diagnoser silence and relabelling', () => {
  it('makes a silent site unknown in real time and relabels the gap from the backfilled spool', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I + 200));
    const will = take(
      d.observePresence(
        's',
        'h',
        { status: 'offline', reason: 'lost', boot_id: 'boot-aaaaaaaa', conn: 1 },
        T0 + 5 * I + 45_000,
      ),
    );
    expect(will.changes.find((c) => c.scope === 'site')).toMatchObject({ to: 'unknown' });
    for (let k = 6; k < 16; k++) take(d.tick(T0 + k * I + I / 2));
    expect(labels(store, 'r1').filter((s) => s === 'unknown').length).toBeGreaterThanOrEqual(10);
    // Back on the same boot: the live report first, then the spool.
    take(d.observeBirth('s', 'h', birth(4, { conn: 2 }), T0 + 16 * I));
    take(d.observeReport('s', 'h', round(16), T0 + 16 * I + 200));
    expect(rigState(d, 'r1')).toBe('ok');
    const relabels: Outcome[] = [];
    for (let k = 5; k < 16; k++)
      relabels.push(take(d.observeReport('s', 'h', round(k, 4, allDead, down, true), T0 + 16 * I + 1000 + k)));
    expect(relabels.some((o) => o.retractions.length > 0)).toBe(true);
    const gap = labels(store, 'r1').slice(5, 16);
    expect(gap.every((s) => s === 'connectivity_loss')).toBe(true);
    const relabel = relabels
      .flatMap((o) => o.incidents)
      .filter((u) => u.action === 'relabel' && u.incident.scope === 'site');
    expect(relabel.at(-1)?.incident.cause).toBe('connectivity_loss');
    expect(relabel.at(-1)?.incident.deficitHashes).toBeGreaterThan(0);
  });

  it('relabels an uncovered gap across a new boot: rigs rebooted → power loss; rigs ran through → ok', () => {
    for (const rebooted of [true, false]) {
      const { d, store, take } = harness();
      for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
      for (let k = 5; k < 20; k++) take(d.tick(T0 + k * I + I / 2));
      expect(rigState(d, 'r1')).toBe('unknown');
      take(d.observeBirth('s', 'h', birth(4, { boot: 'boot-bbbbbbbb', uptimeS: rebooted ? 60 : 90_000 }), T0 + 20 * I));
      const uptime = rebooted ? 50 : 200_000;
      const back = take(
        d.observeReport(
          's',
          'h',
          round(20, 4, Object.fromEntries(['r1', 'r2', 'r3', 'r4'].map((r) => [r, { uptime_s: uptime }]))),
          T0 + 20 * I,
        ),
      );
      const gap = labels(store, 'r1').slice(5, 20);
      expect(new Set(gap)).toEqual(new Set([rebooted ? 'power_loss' : 'ok']));
      const actions = back.incidents
        .filter((u) => u.incident.scope === 'rig' && u.incident.rig === 'r1')
        .map((u) => u.action);
      expect(actions).toContain(rebooted ? 'relabel' : 'void');
    }
  });

  it('ignores a stale Last Will from an earlier connection', () => {
    const { d, take } = harness();
    take(d.observeBirth('s', 'h', birth(4, { conn: 2 }), T0));
    take(d.observeReport('s', 'h', round(0), T0));
    const o = take(
      d.observePresence('s', 'h', { status: 'offline', reason: 'lost', boot_id: 'boot-aaaaaaaa', conn: 1 }, T0 + 1000),
    );
    expect(o.changes).toEqual([]);
    expect(rigState(d, 'r1')).toBe('ok');
  });

  it('puts a skewed agent clock back on the collector time axis', () => {
    const { d, store, take } = harness();
    const skew = 240_000;
    for (let k = 0; k < 3; k++) {
      const rep = round(k);
      rep.ts += skew;
      take(d.observeReport('s', 'h', rep, T0 + k * I + 100));
    }
    const ts = [...(store.rows.get('s/h/r1')?.keys() ?? [])];
    expect(ts.every((t, k) => Math.abs(t - (T0 + k * I)) < 1000)).toBe(true);
  });
});

describe('Diagnoser state', () => {
  it('round-trips through exportState/importState mid-incident and continues identically', () => {
    const feed = (d: Diagnoser, from: number, to: number) => {
      const out: Outcome[] = [];
      for (let k = from; k < to; k++) {
        const broken = k >= 10 && k < 20;
        out.push(d.observeReport('s', 'h', round(k, 4, broken ? allDead : {}, broken ? down : {}), T0 + k * I));
        out.push(d.tick(T0 + k * I + I / 2));
      }
      return out;
    };
    const a = new Diagnoser();
    a.observeBirth('s', 'h', birth(), T0 - 1000);
    feed(a, 0, 14);
    const b = new Diagnoser();
    b.importState(JSON.parse(JSON.stringify(a.exportState())));
    expect(b.exportState()).toEqual(a.exportState());
    expect(feed(b, 14, 30)).toEqual(feed(a, 14, 30));
    expect(() => b.importState({ ...a.exportState(), version: 2 as 1 })).toThrow(/version/);
  });
});
