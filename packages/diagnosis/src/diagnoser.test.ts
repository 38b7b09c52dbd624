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
  it('judges no new silence while the caller is behind, and judges it once it is not', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I + 200));
    // The collector is saturated: the host's next reports wait unread while ticks are held.
    for (let k = 5; k < 12; k++) take(d.tick(T0 + k * I + I / 2, { behind: true }));
    expect(rigState(d, 'r1')).toBe('ok');
    expect(d.stateOf('host', 's/h')?.state).toBe('ok');
    // It catches up: the waiting reports arrive late, read as lateness, not as a skewed agent clock
    // (which would shift them and open a gap), and nothing was ever unknown.
    for (let k = 5; k < 12; k++) take(d.observeReport('s', 'h', round(k), T0 + 12 * I + k * 10, { behind: true }));
    expect(labels(store, 'r1')).not.toContain('unknown');
    expect(labels(store, 'r1')).toHaveLength(12);
    // A host that really falls quiet is judged at the first tick that is not held.
    for (let k = 12; k < 20; k++) take(d.tick(T0 + k * I + I / 2, { behind: true }));
    expect(rigState(d, 'r1')).toBe('ok');
    take(d.tick(T0 + 20 * I + I / 2));
    expect(rigState(d, 'r1')).toBe('unknown');
    // Held ticks still fill the gap of a host already silent.
    const unknownRows = () => labels(store, 'r1').filter((state) => state === 'unknown').length;
    const before = unknownRows();
    for (let k = 21; k < 25; k++) take(d.tick(T0 + k * I + I / 2, { behind: true }));
    expect(unknownRows()).toBeGreaterThan(before);
  });

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

  /**
   * An uplink outage over slots 5..19 during which the agent restarted (unless `newBoot` is false):
   * the return's first live report comes at slot 20, then the spool replays this boot's backlog
   * (the `cover` slots from 12 on) and then the old boot's (the rest), oldest first. Spooled
   * reports say the uplink was down; `rebooted`: the rigs' uptime says they rebooted in the gap.
   */
  function outageAcrossBoot(opts: {
    newBoot?: boolean;
    cover: number[];
    rebooted?: boolean;
    config?: ConstructorParameters<typeof Diagnoser>[0];
    restartCollector?: (d: Diagnoser) => Diagnoser;
  }) {
    let d = new Diagnoser(opts.config);
    const store = new MemoryStore();
    const take = (o: Outcome) => {
      store.apply(o);
      return o;
    };
    take(d.observeBirth('s', 'h', birth(), T0 - 1000));
    for (let k = 0; k < 5; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I));
    for (let k = 5; k < 20; k++) take(d.tick(T0 + k * I + I / 2));
    const newBoot = opts.newBoot ?? true;
    const boot = newBoot ? 'boot-bbbbbbbb' : 'boot-aaaaaaaa';
    take(d.observeBirth('s', 'h', birth(4, { boot, conn: newBoot ? 1 : 2, uptimeS: 90_000 }), T0 + 20 * I));
    const uptime = { uptime_s: opts.rebooted ? 50 : 200_000 };
    const live = round(20, 4, { r1: uptime, r2: uptime, r3: uptime, r4: uptime });
    live.boot_id = boot;
    const back = take(d.observeReport('s', 'h', live, T0 + 20 * I + 200));
    if (opts.restartCollector) d = opts.restartCollector(d);
    const spooled = (k: number) => {
      const rep = round(k, 4, allDead, down, true);
      rep.boot_id = k >= 12 ? boot : 'boot-aaaaaaaa';
      return rep;
    };
    const order = [...opts.cover.filter((k) => k >= 12), ...opts.cover.filter((k) => k < 12)];
    const replay = order.map((k, i) => take(d.observeReport('s', 'h', spooled(k), T0 + 20 * I + 1000 + i)));
    for (let k = 21; k < 24; k++) take(d.observeReport('s', 'h', round(k), T0 + k * I + 200));
    const again = take(d.observeReport('s', 'h', spooled(opts.cover[0] ?? 5), T0 + 24 * I));
    return { d, store, back, replay, again };
  }
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const rigIncidents = (store: MemoryStore, rig: string) =>
    [...store.incidents.values()]
      .filter((i) => i.scope === 'rig' && i.rig === rig)
      .map((i) => `${i.cause} ${Math.round((i.startMs - T0) / I)}..${Math.round(((i.endMs ?? 0) - T0) / I)}`);

  it('lets spooled reports that arrive after an across-boot relabel replace the guessed rows', () => {
    // Both boots' spools cover the outage but slots 12 and 13 (the agent was restarting).
    const cover = [...range(5, 12), ...range(14, 20)];
    const { store, back, replay, again } = outageAcrossBoot({ cover });
    // The first live report guessed the gap from uptime: the rigs ran through it.
    expect(back.rows.filter((r) => r.rig === 'r1' && r.ts < T0 + 20 * I).map((r) => r.state)).toEqual(
      Array(15).fill('ok'),
    );
    // A spooled report retracts the guessed row of its slot and writes its evidence there, through
    // the backfill's hysteresis: the first is held until the second confirms both.
    expect(replay[0]?.retractions).toEqual([]);
    expect(replay[1]?.retractions.filter((x) => x.rig === 'r1')).toEqual([
      { site: 's', host: 'h', rig: 'r1', fromMs: T0 + 14 * I, toMs: T0 + 14 * I + 1 },
      { site: 's', host: 'h', rig: 'r1', fromMs: T0 + 15 * I, toMs: T0 + 15 * I + 1 },
    ]);
    const rows = replay.flatMap((o) => o.rows.filter((r) => r.rig === 'r1'));
    expect(rows.map((r) => (r.ts - T0) / I).sort((a, b) => a - b)).toEqual(cover);
    expect(rows.every((r) => r.state === 'connectivity_loss' && r.deficit_hashes > 0)).toBe(true);
    const retracted = replay.flatMap((o) => o.retractions.filter((x) => x.rig === 'r1').map((x) => x.fromMs));
    expect(new Set(retracted)).toEqual(new Set(cover.map((k) => T0 + k * I)));
    // Slots no spooled report covered keep the guess; the rest is the evidence.
    const gap = labels(store, 'r1').slice(5, 20);
    expect(gap).toEqual(range(5, 20).map((k) => (k === 12 || k === 13 ? 'ok' : 'connectivity_loss')));
    // The voided gap incidents come back with the evidenced cause and deficit.
    const relabels = replay.flatMap((o) => o.incidents).filter((u) => u.action === 'relabel');
    expect(relabels.find((u) => u.incident.scope === 'rig' && u.incident.rig === 'r1')?.incident.cause).toBe(
      'connectivity_loss',
    );
    expect(rigIncidents(store, 'r1')).toEqual(['connectivity_loss 5..20']);
    const siteInc = [...store.incidents.values()].filter((i) => i.scope === 'site');
    expect(siteInc.map((i) => i.cause)).toEqual(['connectivity_loss']);
    const cutDeficit = store
      .all()
      .filter((r) => r.state === 'connectivity_loss')
      .reduce((a, r) => a + r.deficit_hashes, 0);
    expect(siteInc[0]?.deficitHashes).toBeCloseTo(cutDeficit, 0);
    expect(store.unexplained()).toEqual([]);
    // A duplicate delivery of a replaced slot changes nothing.
    expect(again.rows).toEqual([]);
    expect(again.retractions).toEqual([]);
  });

  it('ends an across-boot outage the spool fully covers as it ends one without a restart', () => {
    const cover = range(5, 20);
    const plain = outageAcrossBoot({ newBoot: false, cover });
    const restarted = outageAcrossBoot({ cover });
    expect(restarted.store.all()).toEqual(plain.store.all());
    const shape = (store: MemoryStore) =>
      [...store.incidents.values()].map(({ evidence: _e, ...i }) => ({
        ...i,
        deficitHashes: Math.round(i.deficitHashes),
      }));
    expect(shape(restarted.store)).toEqual(shape(plain.store));
  });

  it('keeps the uptime guess where the spool is silent: rigs rebooted in the gap stay power loss', () => {
    // The host lost power at slot 9: the spool holds the cut's first slots only.
    const { store } = outageAcrossBoot({ cover: range(5, 9), rebooted: true });
    const gap = labels(store, 'r1').slice(5, 20);
    expect(gap).toEqual(range(5, 20).map((k) => (k < 9 ? 'connectivity_loss' : 'power_loss')));
    expect(rigIncidents(store, 'r1')).toEqual(['power_loss 5..20']);
    expect(store.unexplained()).toEqual([]);
  });

  it('keeps the guessed slots across a collector restart, bounded by max_gap_slots', () => {
    const cover = [...range(5, 12), ...range(14, 20)];
    const plain = outageAcrossBoot({ cover });
    const viaJson = outageAcrossBoot({
      cover,
      restartCollector: (d) => {
        const next = new Diagnoser();
        next.importState(JSON.parse(d.exportStateJson()));
        return next;
      },
    });
    const viaPieces = outageAcrossBoot({
      cover,
      restartCollector: (d) => {
        const next = new Diagnoser();
        next.importState(JSON.parse([...d.exportStateJsonPieces(1)].join('')));
        return next;
      },
    });
    for (const r of [viaJson, viaPieces]) {
      expect(r.store.all()).toEqual(plain.store.all());
      expect([...r.store.incidents.values()]).toEqual([...plain.store.incidents.values()]);
    }
    // A state saved before guessed slots were remembered still imports (the guess then stays).
    const old = outageAcrossBoot({
      cover,
      restartCollector: (d) => {
        const state = d.exportState();
        for (const r of state.rigs) delete (r as { guessedSlots?: unknown }).guessedSlots;
        const next = new Diagnoser();
        next.importState(state);
        return next;
      },
    });
    expect(new Set(labels(old.store, 'r1').slice(5, 20))).toEqual(new Set(['ok']));
    // Only the newest `max_gap_slots` slots are remembered, as for the unknown slots of a gap.
    const bounded = outageAcrossBoot({ cover: [], config: { max_gap_slots: 10 } });
    for (const r of bounded.d.exportState().rigs) {
      expect(r.guessedSlots.map((g) => (g.ts - T0) / I)).toEqual(range(10, 20));
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
    expect(JSON.parse(a.exportStateJson())).toEqual(JSON.parse(JSON.stringify(a.exportState())));
    b.importState(JSON.parse(a.exportStateJson()));
    expect(b.exportState()).toEqual(a.exportState());
    expect(feed(b, 14, 30)).toEqual(feed(a, 14, 30));
    expect(() => b.importState({ ...a.exportState(), version: 2 as 1 })).toThrow(/version/);
  });

  it('exports in pieces that join into exportStateJson() byte for byte, whatever the piece size', () => {
    expect([...new Diagnoser().exportStateJsonPieces()].join('')).toBe(new Diagnoser().exportStateJson());
    const d = new Diagnoser();
    for (const host of ['h', 'h2']) d.observeBirth('s', host, birth(), T0 - 1000);
    d.observeBirth('s2', 'h', birth(), T0 - 1000);
    // Mid-incident, so every list of the memory has several records.
    for (let k = 0; k < 8; k++) {
      for (const host of ['h', 'h2'])
        d.observeReport('s', host, round(k, 4, k >= 5 ? allDead : {}, k >= 5 ? down : {}), T0 + k * I);
      d.observeReport('s2', 'h', round(k), T0 + k * I);
    }
    const whole = d.exportStateJson();
    const state = d.exportState();
    expect(state.incidents.length).toBeGreaterThan(1);
    expect(state.sites.length).toBe(2);
    for (const size of [1, 2, 3, 5, 1024]) {
      const pieces = [...d.exportStateJsonPieces(size)];
      expect(pieces.join('')).toBe(whole);
      // A piece per `size` records of each list, a closing piece per list, the opening and the end.
      const records = state.sites.length + state.hosts.length + state.rigs.length + state.incidents.length;
      expect(pieces.length).toBeGreaterThanOrEqual(6 + Math.ceil(state.rigs.length / size));
      expect(pieces.length).toBeLessThanOrEqual(6 + records);
    }
    expect(() => [...d.exportStateJsonPieces(0)]).toThrow(RangeError);
  });

  it('refuses to go on with a piecewise export once the memory has changed', () => {
    const d = new Diagnoser();
    d.observeBirth('s', 'h', birth(), T0 - 1000);
    d.observeReport('s', 'h', round(0), T0);
    const pieces = d.exportStateJsonPieces(1);
    pieces.next();
    pieces.next();
    d.observeReport('s', 'h', round(1), T0 + I);
    expect(() => [...pieces]).toThrow(/changed during a piecewise export/);
    // A tick changes the memory too; an export started after the change is whole again.
    const again = d.exportStateJsonPieces(1);
    again.next();
    d.tick(T0 + 2 * I);
    expect(() => [...again]).toThrow(/changed/);
    expect([...d.exportStateJsonPieces(1)].join('')).toBe(d.exportStateJson());
  });
});

describe('Diagnoser gap incidents', () => {
  const S = 's';
  const H = 'h';
  const late = { reachable: false, error: { kind: 'timeout' as const, message: 'no reply within 5000 ms' } };
  const allLate = { r1: late, r2: late, r3: late, r4: late };
  const offline = (conn: number) => ({
    status: 'offline' as const,
    reason: 'lost' as const,
    boot_id: 'boot-aaaaaaaa',
    conn,
  });
  const online = (conn: number) => ({ status: 'online' as const, boot_id: 'boot-aaaaaaaa', conn });
  /** Every incident of one scope, as `cause start..end` in intervals from T0. */
  const incidentsOf = (store: MemoryStore, scope: string) =>
    [...store.incidents.values()]
      .filter((i) => i.scope === scope)
      .sort((a, b) => a.startMs - b.startMs)
      .map(
        (i) =>
          `${i.cause} ${Math.round((i.startMs - T0) / I)}..${i.endMs === null ? '' : Math.round((i.endMs - T0) / I)}`,
      );

  /**
   * The failed fault-test run: the agent spooled its first reports (rigs answering late) before it
   * got through, replayed them as historical, and the uplink was cut before any live report. The
   * collector had no cursor for the rigs, so the silence opened no gap and the backfilled cut was
   * written as rows of no incident.
   */
  function cutBeforeFirstLive(opts: { spooledFirst: boolean; restartInCut?: boolean }) {
    let d = new Diagnoser();
    const store = new MemoryStore();
    const take = (o: Outcome) => store.apply(o);
    const connectedMs = T0 + 5 * I + 1000;
    take(d.observeBirth(S, H, birth(), connectedMs));
    take(d.observePresence(S, H, online(1), connectedMs));
    if (opts.spooledFirst) {
      for (let k = 0; k < 5; k++) {
        const rep = k < 4 ? round(k, 4, allLate, {}, true) : round(k, 4, allDead, down, true);
        take(d.observeReport(S, H, rep, connectedMs + 10 + k));
      }
    }
    take(d.observePresence(S, H, offline(1), connectedMs + 400));
    for (let k = 6; k < 15; k++) {
      take(d.tick(T0 + k * I + I / 2));
      if (opts.restartInCut && k === 10) {
        const saved = JSON.parse(JSON.stringify(d.exportState()));
        d = new Diagnoser();
        d.importState(saved);
      }
    }
    take(d.observeBirth(S, H, birth(4, { conn: 2 }), T0 + 15 * I + 100));
    take(d.observePresence(S, H, online(2), T0 + 15 * I + 100));
    for (let k = opts.spooledFirst ? 5 : 0; k < 15; k++) {
      const rep = k === 9 ? round(k, 4, allLate, down, true) : round(k, 4, allDead, down, true);
      take(d.observeReport(S, H, rep, T0 + 15 * I + 200 + k));
    }
    for (let k = 15; k < 20; k++) {
      take(d.observeReport(S, H, round(k), T0 + k * I + 300));
      take(d.tick(T0 + k * I + I / 2));
    }
    return { d, store };
  }

  it('gives a cut that began before the first live report its incidents (the spool came first)', () => {
    const { d, store } = cutBeforeFirstLive({ spooledFirst: true });
    expect(store.unexplained()).toEqual([]);
    expect(incidentsOf(store, 'site')).toEqual(['unreachable 0..5', 'connectivity_loss 5..15']);
    // The one late answer inside the cut is noise to the backfill's hysteresis: it keeps the cut's label.
    expect(labels(store, 'r1').slice(5, 15)).toEqual(Array(10).fill('connectivity_loss'));
    expect(rigState(d, 'r1')).toBe('ok');
  });

  it('gives a cut that began before anything reached the collector its incidents', () => {
    const { store } = cutBeforeFirstLive({ spooledFirst: false });
    // The gap starts where the collector lost the agent; what the spool holds from before is history
    // the collector never had, as for any agent.
    expect(store.unexplained()).toEqual([]);
    expect(incidentsOf(store, 'site')).toEqual(['connectivity_loss 5..15']);
    expect(labels(store, 'r1').slice(0, 10)).toEqual(Array(10).fill('connectivity_loss'));
  });

  it('ends the same across a collector restart in the middle of the cut', () => {
    for (const spooledFirst of [true, false]) {
      const plain = cutBeforeFirstLive({ spooledFirst });
      const restarted = cutBeforeFirstLive({ spooledFirst, restartInCut: true });
      expect(restarted.store.unexplained()).toEqual([]);
      expect([...restarted.store.incidents.values()]).toEqual([...plain.store.incidents.values()]);
      expect(restarted.store.all()).toEqual(plain.store.all());
    }
  });

  it('explains every backfilled row whatever the order of spool, live reports and ticks', () => {
    // The collector sorts each committed batch by ts, but live reports overtake the spool across
    // batches, and the silence timer fires between batches.
    const orders = {
      spoolThenLive: (spool: number[]) => [...spool.map((k) => ['h', k] as const), ['l', 15] as const],
      liveThenSpool: (spool: number[]) => [['l', 15] as const, ...spool.map((k) => ['h', k] as const)],
      interleaved: (spool: number[]) => [
        ...spool.slice(0, 4).map((k) => ['h', k] as const),
        ['t', 0] as const,
        ['l', 15] as const,
        ['t', 0] as const,
        ...spool.slice(4).map((k) => ['h', k] as const),
      ],
    };
    for (const [name, order] of Object.entries(orders)) {
      for (const before of ['live', 'spool', 'nothing'] as const) {
        const d = new Diagnoser();
        const store = new MemoryStore();
        const take = (o: Outcome) => store.apply(o);
        take(d.observeBirth(S, H, birth(), T0 - 1000));
        if (before === 'live')
          for (let k = 0; k < 3; k++) take(d.observeReport(S, H, round(k, 4, allLate), T0 + k * I));
        if (before === 'spool')
          for (let k = 0; k < 3; k++) take(d.observeReport(S, H, round(k, 4, allLate, {}, true), T0 + 3 * I));
        take(d.observePresence(S, H, offline(1), T0 + 3 * I + 500));
        take(d.tick(T0 + 5 * I));
        take(d.observeBirth(S, H, birth(4, { conn: 2 }), T0 + 15 * I));
        let nowMs = T0 + 15 * I + 100;
        const spool = Array.from(
          { length: before === 'nothing' ? 15 : 12 },
          (_, i) => i + (before === 'nothing' ? 0 : 3),
        );
        for (const [kind, k] of order(spool)) {
          nowMs += 10;
          if (kind === 'h') take(d.observeReport(S, H, round(k, 4, allDead, down, true), nowMs));
          else if (kind === 'l') take(d.observeReport(S, H, round(k), nowMs));
          else take(d.tick(nowMs));
        }
        const where = `${name}, ${before} before the cut`;
        expect(store.unexplained(), where).toEqual([]);
        const cut = [...(store.rows.get('s/h/r1')?.values() ?? [])].filter(
          (r) => r.ts >= T0 + 3 * I && r.ts < T0 + 15 * I,
        );
        expect(
          cut.map((r) => r.state),
          where,
        ).toEqual(Array(12).fill('connectivity_loss'));
        expect(incidentsOf(store, 'site').at(-1), where).toBe('connectivity_loss 3..15');
      }
    }
  });

  it('opens the gap a tick would have when the host returns before any tick saw it silent', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport(S, H, round(k), T0 + k * I + 200));
    const back = take(d.observeReport(S, H, round(10), T0 + 10 * I + 200));
    expect(back.changes.find((c) => c.scope === 'rig' && c.id === 's/h/r1' && c.to === 'unknown')?.sinceMs).toBe(
      T0 + 5 * I,
    );
    for (let k = 5; k < 10; k++) take(d.observeReport(S, H, round(k, 4, allDead, down, true), T0 + 10 * I + 300 + k));
    expect(labels(store, 'r1').slice(5, 10)).toEqual(Array(5).fill('connectivity_loss'));
    expect(store.unexplained()).toEqual([]);
    expect(incidentsOf(store, 'rig').filter((x) => x.startsWith('connectivity_loss')).length).toBe(4);
  });

  it('keeps a voided gap voided: no later close or extend brings it back', () => {
    const { d, store, take } = harness();
    for (let k = 0; k < 5; k++) take(d.observeReport(S, H, round(k), T0 + k * I));
    for (let k = 5; k < 20; k++) take(d.tick(T0 + k * I + I / 2));
    take(d.observeBirth(S, H, birth(4, { boot: 'boot-bbbbbbbb', uptimeS: 90_000 }), T0 + 20 * I));
    const ran = Object.fromEntries(['r1', 'r2', 'r3', 'r4'].map((r) => [r, { uptime_s: 200_000 }]));
    take(d.observeReport(S, H, round(20, 4, ran), T0 + 20 * I));
    expect(new Set(labels(store, 'r1'))).toEqual(new Set(['ok']));
    expect([...store.incidents.values()]).toEqual([]);
    // Same for a gap the spool covers before the live report closes it.
    const b = harness();
    for (let k = 0; k < 5; k++) b.take(b.d.observeReport(S, H, round(k), T0 + k * I));
    b.take(b.d.observePresence(S, H, offline(1), T0 + 5 * I));
    for (let k = 5; k < 10; k++) b.take(b.d.tick(T0 + k * I + I / 2));
    for (let k = 5; k < 10; k++) b.take(b.d.observeReport(S, H, round(k, 4, {}, {}, true), T0 + 10 * I + k));
    b.take(b.d.observeReport(S, H, round(10), T0 + 10 * I + 100));
    expect(new Set(labels(b.store, 'r1'))).toEqual(new Set(['ok']));
    expect([...b.store.incidents.values()]).toEqual([]);
  });
});
