import { exampleRigSample, type RigSample } from '@hashwatch/protocol';
import { describe, expect, it } from 'vitest';
import { copyInto } from './copy-into.js';
import { FleetView, IN_PLACE_AFTER_MS } from './view.js';

const T0 = 1_795_593_011_390;

/** Same shape: the keys of every object (in any order) and the lengths of every array. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === 'object' && v !== null)
    return Object.fromEntries(
      Object.entries(v)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, x]) => [k, shape(x)]),
    );
  return 'leaf';
}

/** A seeded generator, so a failure names the case that made it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A sample varied the ways firmware varies one: values, a missing field, a sensor more or less, a stuck rig. */
function variant(random: () => number, ts: number): RigSample {
  const s = exampleRigSample(ts);
  if (random() < 0.15) return { rig: s.rig, ts, reachable: false, error: { kind: 'timeout', message: 'no reply' } };
  s.hashrate_hs = Math.round(random() * 120e12);
  if (random() < 0.2) delete s.power_w;
  if (random() < 0.2) s.temps?.push({ sensor: 'board1.chip', temp_c: 60 + random() * 20 });
  if (random() < 0.2) s.boards?.pop();
  if (random() < 0.2 && s.pools?.[0]) s.pools[0].status = 'dead';
  for (const f of s.fans ?? []) f.rpm = Math.round(random() * 6000);
  return s;
}

describe('copyInto', () => {
  it('copies a sample of the same shape into the held tree, keeping its objects', () => {
    const held = exampleRigSample(T0);
    const temps = held.temps;
    const pool = held.pools?.[0];
    const next = exampleRigSample(T0 + 10_000);
    next.hashrate_hs = 90e12;
    if (next.temps?.[1]) next.temps[1].temp_c = 99;
    if (next.pools?.[0]) next.pools[0].status = 'dead';
    expect(copyInto(held, next)).toBe(true);
    expect(held).toEqual(next);
    expect(held.temps).toBe(temps);
    expect(held.pools?.[0]).toBe(pool);
    // The source is left as it was and shares nothing with the held tree.
    expect(next.temps).not.toBe(temps);
  });

  it('refuses a source of another shape', () => {
    const base = () => exampleRigSample(T0) as unknown as Record<string, unknown>;
    const cases: Array<[string, (s: Record<string, unknown>) => void]> = [
      ['a key missing', (s) => delete s.power_w],
      ['a key more', (s) => (s.flags = ['hashrate_absurd'])],
      ['a shorter array', (s) => (s.temps as unknown[]).pop()],
      ['a longer array', (s) => (s.fans as unknown[]).push({ fan: 'fan9', rpm: 1 })],
      ['a key missing deep down', (s) => delete (s.pools as Record<string, unknown>[])[0]?.last_share_ts],
      ['an object for an array', (s) => (s.temps = { sensor: 'x', temp_c: 1 })],
      ['a number for an object', (s) => ((s.boards as unknown[])[0] = 3)],
      ['null for an object', (s) => ((s.pools as unknown[])[0] = null)],
    ];
    for (const [name, change] of cases) {
      const other = base();
      change(other);
      expect(copyInto(base(), other), name).toBe(false);
      expect(copyInto(other, base()), `${name}, the other way`).toBe(false);
    }
  });

  it('agrees with a shape comparison on 500 varied pairs, and copies every value when it accepts', () => {
    const random = rng(20261207);
    let accepted = 0;
    for (let i = 0; i < 500; i++) {
      const held = variant(random, T0);
      const next = variant(random, T0 + 10_000);
      const same = JSON.stringify(shape(held)) === JSON.stringify(shape(next));
      expect(copyInto(held, next), `pair ${i}`).toBe(same);
      if (same) {
        expect(held, `pair ${i}`).toEqual(next);
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('FleetView.recordSample', () => {
  it('keeps its own copy, updated in place, and never the caller’s objects', () => {
    const view = new FleetView();
    const first = exampleRigSample(T0);
    view.recordSample('s', 'h', first, T0);
    const held = view.getRig('s', 'h', 'rig-01')?.sample;
    expect(held).toEqual(first);
    expect(held).not.toBe(first);

    const second = exampleRigSample(T0 + 10_000);
    second.power_w = 3100;
    view.recordSample('s', 'h', second, T0 + 10_000);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).toBe(held);
    expect(held).toEqual(second);
    second.power_w = 1; // a caller reusing its objects changes nothing in the view
    expect(held?.power_w).toBe(3100);

    // A rig that stops answering changes shape: a new copy, equal to what was sent.
    const down: RigSample = {
      rig: 'rig-01',
      ts: T0 + 20_000,
      reachable: false,
      error: { kind: 'timeout', message: 'x' },
    };
    view.recordSample('s', 'h', down, T0 + 20_000);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).toEqual(down);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).not.toBe(down);

    // An older sample (a late report) does not overwrite a newer one.
    view.recordSample('s', 'h', exampleRigSample(T0 + 15_000), T0 + 20_000);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).toEqual(down);
  });

  it('keeps the samples of a rig that reports many times a second as they are, and copies again once it slows', () => {
    const view = new FleetView();
    const at = (ms: number) => exampleRigSample(T0 + ms);
    view.recordSample('s', 'h', at(0), T0);
    const own = view.getRig('s', 'h', 'rig-01')?.sample;
    const fast = at(IN_PLACE_AFTER_MS - 1);
    view.recordSample('s', 'h', fast, T0);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).toBe(fast);
    // The caller's object is never written into: the next slow sample gets a copy of its own.
    const slow = at(2 * IN_PLACE_AFTER_MS);
    view.recordSample('s', 'h', slow, T0);
    const copy = view.getRig('s', 'h', 'rig-01')?.sample;
    expect(copy).toEqual(slow);
    expect(copy).not.toBe(slow);
    expect(copy).not.toBe(own);
    expect(fast.ts).toBe(T0 + IN_PLACE_AFTER_MS - 1);
    // …which later slow samples update in place.
    view.recordSample('s', 'h', at(4 * IN_PLACE_AFTER_MS), T0);
    expect(view.getRig('s', 'h', 'rig-01')?.sample).toBe(copy);
    expect(copy?.ts).toBe(T0 + 4 * IN_PLACE_AFTER_MS);
  });
});
